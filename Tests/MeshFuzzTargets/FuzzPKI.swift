import Foundation
import MeshConfig
import MeshTLS

/// A mesh CA with two nodes, `alpha` and `bravo`, made once per process with MeshTLS's own PKI code,
/// and the TLS contexts the fuzz targets need. The files live in a temporary directory only while
/// the contexts are built: a TLSContext reads its certificates, key and CRL when it is made.
final class FuzzPKI: Sendable {
    static let mesh = "fuzz"
    static let nodes: Set<String> = ["alpha", "bravo"]

    /// bravo accepting mesh peers (it asks for a client certificate).
    let meshServer: TLSContext
    /// alpha dialing bravo.
    let meshClient: TLSContext
    /// alpha's certificate presented to any client, as a balancer's front door does ("postgresql" ALPN).
    let anyClientServer: TLSContext

    /// Built on first use; a failure here is a broken test set-up, not a fuzz finding.
    static let shared: FuzzPKI = {
        do {
            return try FuzzPKI()
        } catch {
            fatalError("fuzz targets: cannot build the test PKI: \(error)")
        }
    }()

    private init() throws {
        let directory = FileManager.default.temporaryDirectory
            .appendingPathComponent("tunnelmesh-fuzz-pki-\(getpid())-\(UUID().uuidString.prefix(8))").path
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let pki = PKIDirectory(directory)
        let authority = try CertificateAuthority.create(mesh: Self.mesh, in: pki)
        for node in Self.nodes { try authority.issue(node: node) }
        func files(_ node: String) -> TLSFiles {
            TLSFiles(ca: pki.caCertificate, cert: pki.certificate(node: node), key: pki.key(node: node), crl: pki.revocationList)
        }
        self.meshServer = try TLSContext(role: .server, files: files("bravo"))
        self.meshClient = try TLSContext(role: .client, files: files("alpha"))
        self.anyClientServer = try TLSContext(
            anyClientCertificate: pki.certificate(node: "alpha"),
            key: pki.key(node: "alpha"),
            alpn: "postgresql",
            setting: "fuzz.tls"
        )
    }
}
