import ArgumentParser
import MeshTLS

/// `meshctl pki revoke`: puts a node's certificate on the mesh's CRL.
struct PKIRevokeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "revoke",
        abstract: "Add NODE's certificate to the CRL in --dir.",
        discussion: """
            Reads the serial from DIR/NODE.pem, adds it to DIR/crl.pem keeping earlier entries, bumps the \
            CRL number and re-signs it. Revoking twice changes nothing. Copy crl.pem to every node and \
            reload them afterwards.
            """
    )

    @Argument(help: "The node whose current certificate (DIR/NODE.pem) is revoked.")
    var node: String

    @Option(help: "The PKI directory holding ca.pem, ca.key and crl.pem.")
    var dir: String

    func run() throws {
        let directory = PKIDirectory(dir)
        let authority = try CertificateAuthority(loadingFrom: directory)
        switch try authority.revoke(node: node) {
        case .revoked(let serial, let number, let entries):
            print(
                "revoked \(node) (serial \(serial)): \(directory.revocationList) is now CRL #\(number) with \(entries) revoked certificate\(entries == 1 ? "" : "s")"
            )
            print("next: copy \(directory.revocationList) to every node and reload meshd there")
        case .alreadyRevoked(let serial, let number):
            print("\(node) (serial \(serial)) is already revoked in \(directory.revocationList) (CRL #\(number)); nothing changed")
        }
    }
}
