/// The certificate and key one node's balancer presents: `{node}` substituted and both paths absolute.
public struct BalancerTLSFiles: Sendable, Equatable {
    public var cert: String
    public var key: String

    public init(cert: String, key: String) {
        self.cert = cert
        self.key = key
    }
}
