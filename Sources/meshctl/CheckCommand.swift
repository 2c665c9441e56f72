import ArgumentParser
import Foundation
import MeshConfig
import MeshControlClient
import MeshControlModel

/// `meshctl check [PATH]`: validates mesh.json and this node's certificate files without an agent;
/// with `--against SOCKET`, asks the agent there what a reload of PATH would change.
struct CheckCommand: AsyncParsableCommand {
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

            With --against SOCKET, meshctl sends PATH to the agent at control socket SOCKET, which validates             and plans it as if it replaced its own config file (relative paths resolve against that file's             directory, certificates are read by the agent) and applies nothing: it prints what a reload would             change on that node, like 'meshctl reload --dry-run'. Exit status then: 0 planned, 2 a reload             would be rejected or usage error, 3 agent unreachable.
            """
    )

    static let defaultPath = "/etc/meshd/mesh.json"

    @OptionGroup var options: ControlOptions

    @Argument(help: ArgumentHelp("The mesh.json to check.", valueName: "path"))
    var path: String?

    @Option(
        name: .long,
        help: ArgumentHelp("Plan PATH against the running agent at this control socket instead.", valueName: "socket")
    )
    var against: String?

    @Flag(name: .long, help: "Print the findings as JSON.")
    var json = false

    func validate() throws {
        if let path, let config = self.options.config, path != config {
            throw ValidationError("give the config once: PATH (\(path)) and --config (\(config)) differ")
        }
        if self.against != nil, self.options.control != nil || self.options.node != nil {
            throw ValidationError("--against SOCKET names the agent, which plans for its own node: drop --control and --node")
        }
    }

    func run() async throws {
        let path = self.path ?? self.options.config ?? Self.defaultPath
        if let socket = self.against {
            try await self.plan(path, against: socket)
            return
        }
        let report = ConfigCheck(configPath: path, node: self.options.node, now: Date()).run()
        if self.json {
            FileHandle.standardOutput.write(Data(try ControlJSON.text(report).utf8))
        } else {
            FileHandle.standardOutput.write(Data(report.text.utf8))
        }
        if report.exitCode != 0 { throw ExitCode(report.exitCode) }
    }

    /// Sends PATH to the agent at `socket` for a dry run and prints its plan.
    private func plan(_ path: String, against socket: String) async throws {
        try await ControlCommand.run {
            let document: Data
            do {
                document = try Data(contentsOf: URL(fileURLWithPath: path))
            } catch {
                throw MeshctlFailure(code: 2, message: "\(path): cannot read: \((error as NSError).localizedDescription)")
            }
            guard !document.isEmpty else { throw MeshctlFailure(code: 2, message: "\(path): the file is empty; it must hold a mesh.json") }
            let client = ControlClient(socketPath: socket)
            let outcome: ReloadOutcome = try await client.post(DryRunReport.path(file: path), body: document)
            return try DryRunReport.print(outcome, file: path, json: self.json)
        }
    }
}
