import Foundation

/// A throwaway certificate authority made by the real `meshctl pki`, plus the odd certificates the
/// security tests need that meshctl rightly refuses to make (self-signed, wrong mesh), made by `openssl`.
public struct TestPKI {
    public let dir: URL
    public let mesh: String

    /// `meshctl pki init --mesh MESH --dir DIR`: a new CA, key and empty CRL.
    public init(mesh: String, dir: URL) throws {
        self.dir = dir
        self.mesh = mesh
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        try Self.meshctl(["pki", "init", "--mesh", mesh, "--dir", dir.path])
    }

    public var caPEM: URL { self.dir.appendingPathComponent("ca.pem") }
    public var caKey: URL { self.dir.appendingPathComponent("ca.key") }
    public var crlPEM: URL { self.dir.appendingPathComponent("crl.pem") }
    public func cert(_ node: String) -> URL { self.dir.appendingPathComponent("\(node).pem") }
    public func key(_ node: String) -> URL { self.dir.appendingPathComponent("\(node).key") }

    /// `meshctl pki issue NODE [--days N] [--not-before YYYY-MM-DD]`.
    public func issue(_ node: String, days: Int? = nil, notBefore: Date? = nil) throws {
        var args = ["pki", "issue", node, "--dir", self.dir.path]
        if let days { args += ["--days", "\(days)"] }
        if let notBefore { args += ["--not-before", Self.day(notBefore)] }
        try Self.meshctl(args)
    }

    /// `meshctl pki revoke NODE`: adds the node's certificate to crl.pem.
    public func revoke(_ node: String) throws {
        try Self.meshctl(["pki", "revoke", node, "--dir", self.dir.path])
    }

    /// A self-signed certificate carrying an otherwise correct identity for `node`.
    public func selfSigned(_ node: String, name: String) throws -> (cert: URL, key: URL) {
        let cert = self.dir.appendingPathComponent("\(name).pem")
        let key = self.dir.appendingPathComponent("\(name).key")
        try Command.check(
            "openssl",
            [
                "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
                "-keyout", key.path, "-out", cert.path, "-days", "30", "-subj", "/CN=\(node)",
                "-addext", "subjectAltName=URI:spiffe://\(self.mesh)/node/\(node)",
            ]
        )
        return (cert, key)
    }

    /// A certificate signed by this CA whose URI SAN is `uri` (e.g. another mesh's name).
    public func signed(name: String, commonName: String, uri: String) throws -> (cert: URL, key: URL) {
        let cert = self.dir.appendingPathComponent("\(name).pem")
        let key = self.dir.appendingPathComponent("\(name).key")
        let csr = self.dir.appendingPathComponent("\(name).csr")
        let ext = self.dir.appendingPathComponent("\(name).ext")
        try Data(
            """
            subjectAltName=URI:\(uri)
            basicConstraints=critical,CA:FALSE
            keyUsage=critical,digitalSignature
            extendedKeyUsage=serverAuth,clientAuth

            """.utf8
        ).write(to: ext)
        try Command.check(
            "openssl",
            [
                "req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
                "-keyout", key.path, "-out", csr.path, "-subj", "/CN=\(commonName)",
            ]
        )
        try Command.check(
            "openssl",
            [
                "x509", "-req", "-in", csr.path, "-CA", self.caPEM.path, "-CAkey", self.caKey.path,
                "-set_serial", "\(Int.random(in: 1_000_000...9_999_999))", "-days", "30",
                "-extfile", ext.path, "-out", cert.path,
            ]
        )
        return (cert, key)
    }

    /// A date as `--not-before` takes it (UTC day).
    public static func day(_ date: Date) -> String {
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = TimeZone(identifier: "UTC")
        formatter.dateFormat = "yyyy-MM-dd"
        return formatter.string(from: date)
    }

    /// The built `meshctl` with `args`; its stdout, or `Command.Failed`.
    @discardableResult
    public static func meshctl(_ args: [String]) throws -> String {
        try Command.check(BuildProducts.meshctl.path, args)
    }
}
