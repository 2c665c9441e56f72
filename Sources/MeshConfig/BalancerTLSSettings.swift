/// A balancer's `tls` block as written: its server certificate and key, paths that may contain
/// `{node}`, relative to the config directory. Clients are not asked for a certificate: PostgreSQL
/// authenticates them end to end, through the balancer.
public struct BalancerTLSSettings: Sendable, Equatable {
    public var cert: String
    public var key: String

    public init(cert: String, key: String) {
        self.cert = cert
        self.key = key
    }
}
