import ArgumentParser
import Foundation
import MeshConfig
import MeshControlModel

/// `meshctl check [PATH]`: validates mesh.json and this node's certificate files without an agent.
struct CheckCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "check",
        abstract: "Validate mesh.json and this node's certificate, key, CA and CRL files, offline.",
        discussion: """
            PATH defaults to --config, else \(Self.defaultPath). Checks: mesh.json (the first problem, with its \
            JSON path); the CA file; the CRL (signed by the CA, not stale); and for the node — --node NAME, the \
            node a single tls.cert names, or else every declared node whose certificate file exists — its chain \
            to the CA (OpenSSL's verification, as a peer does it), the URI SAN spiffe://<mesh>/node/<name>, that \
            the key matches, revocation, and the validity dates (under \(ConfigCheck.warningDays) days left is a \
            warning). Prints one line per finding: 'ok|warning|error: FILE[: JSON.PATH][: NODE]: message'.
            Exit status: 0 no errors (warnings allowed), 2 any error or a usage error.
            """
    )

    static let defaultPath = "/etc/meshd/mesh.json"

    @OptionGroup var options: ControlOptions

    @Argument(help: ArgumentHelp("The mesh.json to check.", valueName: "path"))
    var path: String?

    @Flag(name: .long, help: "Print the findings as JSON.")
    var json = false

    func validate() throws {
        if let path, let config = self.options.config, path != config {
            throw ValidationError("give the config once: PATH (\(path)) and --config (\(config)) differ")
        }
    }

    func run() throws {
        let path = self.path ?? self.options.config ?? Self.defaultPath
        let report = ConfigCheck(configPath: path, node: self.options.node, now: Date()).run()
        if self.json {
            FileHandle.standardOutput.write(Data(try ControlJSON.text(report).utf8))
        } else {
            FileHandle.standardOutput.write(Data(report.text.utf8))
        }
        if report.exitCode != 0 { throw ExitCode(report.exitCode) }
    }
}
