import ArgumentParser
import Foundation
import MeshConfig
import MeshControlModel
import MeshTLS

/// `meshctl pki issue`: creates a node's key and certificate, signed by the mesh's CA.
struct PKIIssueCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "issue",
        abstract: "Issue a node's key and certificate from the CA in --dir.",
        discussion: """
            Writes DIR/NODE.key (ECDSA P-256, mode 0600) and DIR/NODE.pem: CN=NODE, URI SAN \
            spiffe://<mesh>/node/NODE (the mesh name is read from the CA), DNS SAN NODE, serverAuth and \
            clientAuth. Refuses to replace an existing NODE.pem or NODE.key unless --force.

            With --bundle, also writes DIR/NODE-bundle.tar (mode 0600): etc/meshd/pki/ with ca.pem, crl.pem,             NODE.pem (0644) and NODE.key (0640), the directory 0750, all owned root:meshd, for             'tar -C / -xpf NODE-bundle.tar' on the node as root (a node without a group meshd gets group root).             Never the CA key.
            """
    )

    @Argument(help: "The node's name as declared in mesh.json (1-63 of a-z, 0-9, '_', '-').")
    var node: String

    @Option(help: "The PKI directory holding ca.pem and ca.key.")
    var dir: String

    @Option(help: "How long the certificate is valid, in days.")
    var days: Int = CertificateAuthority.defaultNodeDays

    @Option(
        help: ArgumentHelp(
            "Instead of --days: valid until this long from now, e.g. 5m, 90s, 12h.",
            discussion: "For short-lived certificates and for testing their rotation (README, \"Certificate rotation\").",
            valueName: "duration"
        )
    )
    var validFor: String?

    @Option(
        help: ArgumentHelp(
            "For tests: start of validity, YYYY-MM-DD or YYYY-MM-DDTHH:MM:SSZ (UTC).",
            discussion: "Lets a test build expired or not-yet-valid certificates. Default: now minus one hour, for clock skew.",
            valueName: "date"
        )
    )
    var notBefore: UTCDate?

    @Flag(help: "Replace an existing key and certificate for NODE.")
    var force = false

    @Flag(help: "Also write DIR/NODE-bundle.tar: what the node needs under /etc/meshd/pki, modes and owners set.")
    var bundle = false

    func run() throws {
        let directory = PKIDirectory(dir)
        let authority = try CertificateAuthority(loadingFrom: directory)
        let bundle = self.bundle ? NodeBundle(pki: directory, node: node) : nil
        try bundle?.requireSources(node: false)  // before a certificate is issued for nothing
        let info = try authority.issue(node: node, days: days, validFor: try self.validity(), notBefore: notBefore?.date, force: force)
        let sans = info.uriSANs.map { "URI:\($0)" } + info.dnsSANs.map { "DNS:\($0)" }
        print("issued \(node) for mesh '\(authority.meshName)'")
        print("  \(directory.certificate(node: node))  \(info.subject), \(sans.joined(separator: ", "))")
        print("    serial \(info.serial), valid \(HumanUnits.date(info.notBefore)) to \(HumanUnits.date(info.notAfter))")
        print("  \(directory.key(node: node))  private key, mode 0600")
        if let bundle {
            try bundle.write()
            print("  \(bundle.archivePath)  for the node: tar -C / -xpf \((bundle.archivePath as NSString).lastPathComponent) (as root)")
        }
    }

    private func validity() throws -> Duration? {
        guard let validFor else { return nil }
        guard let duration = DurationText.parse(validFor) else {
            throw ValidationError("--valid-for: expected a duration such as \"90s\", \"5m\" or \"12h\", got \"\(validFor)\"")
        }
        return duration
    }
}
