/// A PostgreSQL balancer: which service it routes to and where it listens on each node.
public struct BalancerSettings: Sendable, Equatable {
    public var name: String
    /// A service that has a `postgres` block.
    public var service: String
    public var on: [String: BalancerListeners]
    /// Standbys lagging more than this are not used for reads. Default 10s.
    public var maxLag: Duration
    public var roFallback: ReadFallback
    /// The balancer's own certificate for clients that ask for TLS; nil answers every SSLRequest with 'N'.
    public var tls: BalancerTLSSettings?

    public init(
        name: String,
        service: String,
        on: [String: BalancerListeners],
        maxLag: Duration = .seconds(10),
        roFallback: ReadFallback = .primary,
        tls: BalancerTLSSettings? = nil
    ) {
        self.name = name
        self.service = service
        self.on = on
        self.maxLag = maxLag
        self.roFallback = roFallback
        self.tls = tls
    }

    /// Socket-activation names of the listeners: "<balancer>-rw" and "<balancer>-ro".
    public var rwListenerName: String { "\(name)-rw" }
    public var roListenerName: String { "\(name)-ro" }
}

extension MeshConfiguration {
    /// The files `balancer` presents to TLS clients on `node`, or nil when it has no `tls` block.
    public func tlsFiles(of balancer: BalancerSettings, on node: String) -> BalancerTLSFiles? {
        guard let tls = balancer.tls else { return nil }
        func resolve(_ template: String) -> String {
            FilePaths.absolute(template.replacingOccurrences(of: "{node}", with: node), against: directory)
        }
        return BalancerTLSFiles(cert: resolve(tls.cert), key: resolve(tls.key))
    }
}
