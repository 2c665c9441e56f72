import ArgumentParser
import MeshControlModel

/// `meshctl backends`: the database nodes the balancers on this node route to.
struct BackendsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "backends",
        abstract:
            "Show the database nodes of this node's balancers: role, state, timeline, WAL position, replay lag, connections (rw/ro), last report.",
        discussion: """
            A node is up when its latest report is fresh (within 3 probe intervals) and its PostgreSQL answered; \
            down when it reported a failed probe; unknown when no fresh report came. Only up nodes are routed to.

            Exit status: 0 every backend up (or none), 1 degraded (a backend down or unknown), 2 usage error, 3 agent unreachable.
            """
    )

    @OptionGroup var options: ControlOptions

    @Flag(name: .long, help: "Print the /v1/backends JSON instead of a table.")
    var json = false

    func run() async throws {
        try await ControlCommand.run {
            let backends: [BackendInfo] = try await self.options.client().get("/v1/backends")
            if self.json {
                try ControlCommand.printJSON(backends)
            } else {
                ControlCommand.printText(BackendsText.render(backends, style: ControlCommand.style))
            }
            return backends.allSatisfy(\.healthy) ? 0 : 1
        }
    }
}
