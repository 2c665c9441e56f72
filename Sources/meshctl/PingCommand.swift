import ArgumentParser
import Foundation
import MeshControlModel

/// `meshctl ping PEER [-c N]`: round trips through the tunnel itself (HTTP/2 PING frames).
struct PingCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ping",
        abstract: "Measure round trips to a peer through its tunnel (HTTP/2 PING), with min/avg/max.",
        discussion:
            "Exit status: 0 all answered, 1 the tunnel is not up or a PING went unanswered, 2 usage error or unknown peer, 3 agent unreachable."
    )

    @OptionGroup var options: ControlOptions

    @Argument(help: "The peer's node name.")
    var peer: String

    @Option(name: .shortAndLong, help: "Number of round trips (1-\(PingReport.maxCount)).")
    var count = 3

    @Flag(name: .long, help: "Print the ping JSON instead of text.")
    var json = false

    func validate() throws {
        guard (1...PingReport.maxCount).contains(self.count) else {
            throw ValidationError("-c must be from 1 to \(PingReport.maxCount)")
        }
    }

    func run() async throws {
        try await ControlCommand.run {
            // Each PING may take up to the agent's timeout, plus the pause between them.
            let budget = (PingReport.timeout + PingReport.interval) * self.count + .seconds(5)
            let client = try self.options.client(timeout: budget)
            let escaped = self.peer.addingPercentEncoding(withAllowedCharacters: .urlPathAllowed.subtracting(["/"])) ?? self.peer
            let report: PingReport = try await client.post("/v1/peers/\(escaped)/ping?count=\(self.count)")
            if self.json {
                try ControlCommand.printJSON(report)
            } else {
                ControlCommand.printText(PingText.render(report, style: ControlCommand.style))
            }
            return 0
        }
    }
}
