import ArgumentParser
import MeshControl

/// `meshctl backends`: the database nodes the balancers on this node route to.
struct BackendsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "backends",
        abstract: "Show the database backends of this node's balancers: role, health, replication lag.",
        discussion: "Exit status: 0 all backends healthy (or none), 1 degraded (a backend unhealthy), 2 usage error, 3 agent unreachable.")

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
