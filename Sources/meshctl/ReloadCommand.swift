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
            with the old one. Exit status: 0 reloaded, 2 the new config was rejected (the error says why) or \
            usage error, 3 agent unreachable.
            """
    )

    @OptionGroup var options: ControlOptions

    @Flag(name: .long, help: "Print the JSON answer instead of text.")
    var json = false

    func run() async throws {
        try await ControlCommand.run {
            let client = try self.options.client()
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
