import ArgumentParser
import Foundation
import MeshControlModel

/// `meshctl status`: the agent's identity, uptime, config, last load, peers and certificate.
struct StatusCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "status",
        abstract: "Show the agent: node, version, uptime, config and its SHA-256, last load, peers up, certificate expiry.",
        discussion: "Exit status: 0 all peers up, 1 degraded (a peer not up or the last load failed), 2 usage error, 3 agent unreachable."
    )

    @OptionGroup var options: ControlOptions

    @Flag(name: .long, help: "Print the /v1/status JSON instead of text.")
    var json = false

    func run() async throws {
        try await ControlCommand.run {
            let client = try self.options.client()
            let status: AgentStatus = try await client.get("/v1/status")
            if self.json {
                try ControlCommand.printJSON(status)
            } else {
                let peers: [PeerInfo] = status.peersUp == status.peersTotal ? [] : try await client.get("/v1/peers")
                ControlCommand.printText(StatusText.render(status, peers: peers, now: Date(), style: ControlCommand.style))
            }
            return status.peersUp == status.peersTotal && status.lastReload.ok ? 0 : 1
        }
    }
}
