import ArgumentParser
import Foundation
import MeshControlModel

/// `meshctl peers`: one row per peer with its tunnel's state, RTT, streams, traffic and errors.
struct PeersCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "peers",
        abstract:
            "Show each peer's tunnel: state and since when, RTT, streams (active/total), bytes sent and received, last error, certificate expiry.",
        discussion: "Exit status: 0 all peers up, 1 degraded (a peer not up), 2 usage error, 3 agent unreachable."
    )

    @OptionGroup var options: ControlOptions

    @Flag(name: .long, help: "Print the /v1/peers JSON instead of a table.")
    var json = false

    func run() async throws {
        try await ControlCommand.run {
            let peers: [PeerInfo] = try await self.options.client().get("/v1/peers")
            if self.json {
                try ControlCommand.printJSON(peers)
            } else {
                ControlCommand.printText(PeersText.render(peers, now: Date(), style: ControlCommand.style))
            }
            return peers.allSatisfy(\.isUp) ? 0 : 1
        }
    }
}
