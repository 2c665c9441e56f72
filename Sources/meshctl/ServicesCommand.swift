import ArgumentParser
import MeshControlModel

/// `meshctl services`: the services this node serves to peers and the forwards it runs.
struct ServicesCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "services",
        abstract: "Show the services this node serves (target, who may open them) and its forwards (listener, destination)."
    )

    @OptionGroup var options: ControlOptions

    @Flag(name: .long, help: "Print the /v1/services JSON instead of a table.")
    var json = false

    func run() async throws {
        try await ControlCommand.run {
            let services: [ServiceInfo] = try await self.options.client().get("/v1/services")
            if self.json {
                try ControlCommand.printJSON(services)
            } else {
                ControlCommand.printText(ServicesText.render(services, style: ControlCommand.style))
            }
            return 0
        }
    }
}
