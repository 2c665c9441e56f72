import ArgumentParser

/// `meshctl pki`: create the mesh's CA, issue and revoke node certificates, describe certificate files.
struct PKICommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "pki",
        abstract: "Create the mesh's CA, issue and revoke node certificates, show certificates and CRLs.",
        discussion: """
            A PKI directory holds ca.pem, ca.key (mode 0600), crl.pem and one <node>.pem / <node>.key \
            pair per node: the layout mesh.json's "tls" section points at. Keep ca.key off the nodes.
            """,
        subcommands: [PKIInitCommand.self, PKIIssueCommand.self, PKIRevokeCommand.self, PKIShowCommand.self]
    )
}
