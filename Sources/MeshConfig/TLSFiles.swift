/// The TLS files one node uses: `{node}` substituted and every path absolute.
public struct TLSFiles: Sendable, Equatable {
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
