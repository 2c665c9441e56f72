/// The `tls` block as written: file paths that may contain `{node}`, relative to the config directory.
public struct TLSSettings: Sendable, Equatable {
    public var ca: String
    public var cert: String
    public var key: String
    public var crl: String?

    public init(ca: String, cert: String, key: String, crl: String? = nil) {
        self.ca = ca
        self.cert = cert
        self.key = key
        self.crl = crl
    }
}
