import ArgumentParser
import Foundation
import MeshControlModel

/// `meshctl reload`: asks the agent to re-read mesh.json and its certificates, waits, prints the result.
struct ReloadCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "reload",
        abstract: "Re-read mesh.json, certificates, key and CRL in the running agent (like SIGHUP) and print the result.",
        discussion: """
            A new config or certificate that fails to load is rejected as a whole: the agent keeps running \
            with the old one. With --dry-run the agent validates and plans its config file exactly as a reload \
            would and applies nothing: it prints the tunnels added, closed or redialed, the listeners opened or \
            closed, the services and balancers changed, or "no change". Exit status: 0 reloaded (or planned), \
            2 the new config was (or would be) rejected (the error says why) or usage error, 3 agent unreachable.
            """
    )

    @OptionGroup var options: ControlOptions

    @Flag(name: .long, help: "Print what a reload would change, and apply nothing.")
    var dryRun = false

    @Flag(name: .long, help: "Print the JSON answer instead of text.")
    var json = false

    func run() async throws {
        try await ControlCommand.run {
            let client = try self.options.client()
            if self.dryRun {
                let outcome: ReloadOutcome = try await client.post(DryRunReport.path(file: nil))
                return try DryRunReport.print(outcome, file: nil, json: self.json)
            }
            let outcome: ReloadOutcome = try await client.post("/v1/reload")
            if self.json {
                try ControlCommand.printJSON(outcome)
            } else if outcome.ok {
                ControlCommand.printText("reloaded: \(outcome.summary ?? "done")\n")
            } else {
                ControlCommand.printText("reload rejected, still running the previous config: \(outcome.error ?? "unknown error")\n")
            }
            return outcome.ok ? 0 : 2
        }
    }
}
