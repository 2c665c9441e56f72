import MeshConfig

/// TLS at a balancer's front door: the server context made from `balancers.<name>.tls`.
public enum FrontDoorTLS {
    /// The ALPN protocol PostgreSQL 17 clients offer (and, for direct TLS, require).
    public static let alpn = "postgresql"

    /// The server context `balancer` presents on `node`, or nil when it has no `tls` block. Build it
    /// once per configuration and share it across connections; a certificate or key that cannot be
    /// used is a setup error that names the file and the `balancers.<name>.tls` key.
    public static func context(
        for balancer: BalancerSettings,
        in config: MeshConfiguration,
        node: String
    ) throws(TLSSetupError) -> TLSContext? {
        guard let files = config.tlsFiles(of: balancer, on: node) else { return nil }
        return try TLSContext(
            anyClientCertificate: files.cert,
            key: files.key,
            alpn: Self.alpn,
            setting: "balancers.\(balancer.name).tls"
        )
    }
}
