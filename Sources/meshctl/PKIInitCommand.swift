import ArgumentParser
import Foundation
import MeshControlModel
import MeshTLS

/// `meshctl pki init`: creates the mesh's certificate authority and its empty CRL.
struct PKIInitCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "init",
        abstract: "Create the mesh's CA (ECDSA P-256) and an empty CRL in --dir.",
        discussion: """
            Writes DIR/ca.pem (CN "tunnelmesh <mesh> CA", URI SAN spiffe://<mesh>), DIR/ca.key (mode 0600) \
            and DIR/crl.pem (valid \(CertificateAuthority.revocationListDays) days). Creates DIR with mode 0700 \
            if it is missing. Refuses to replace an existing CA unless --force.
            """
    )

    @Option(help: "The mesh name, as in mesh.json's \"mesh\".")
    var mesh: String

    @Option(help: "The PKI directory.")
    var dir: String

    @Option(help: "How long the CA is valid, in days.")
    var days: Int = CertificateAuthority.defaultCADays

    @Flag(help: "Replace an existing CA. Every certificate the old CA issued stops verifying.")
    var force = false

    func run() throws {
        let directory = PKIDirectory(dir)
        let replacing = FileManager.default.fileExists(atPath: directory.caCertificate)
        let authority = try CertificateAuthority.create(mesh: mesh, in: directory, days: days, force: force)
        let info = authority.certificate.info
        let crl = try authority.revocationList().info
        if replacing {
            print("replaced the CA in \(directory.path): certificates issued by the old CA no longer verify")
        }
        print("created the CA for mesh '\(authority.meshName)' in \(directory.path)")
        print(
            "  \(directory.caCertificate)  \(info.subject), \(info.uriSANs.map { "URI:\($0)" }.joined(separator: ", ")), valid until \(HumanUnits.date(info.notAfter))"
        )
        print("  \(directory.caKey)  private key, mode 0600: keep it off the nodes")
        print("  \(directory.revocationList)  empty CRL #\(crl.number ?? 0), next update \(crl.nextUpdate.map(HumanUnits.date) ?? "none")")
        print("next: meshctl pki issue NODE --dir \(directory.path)")
    }
}
