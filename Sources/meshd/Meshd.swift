import ArgumentParser
import Foundation
import Logging
import MeshBalancer
import MeshConfig
import MeshSystemd
import MeshTLS
import MeshTunnel
import NIOCore
import NIOPosix
import ServiceLifecycle

/// `meshd --config PATH [--node NAME]`: the tunnelmesh agent.
@main
struct Meshd: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "meshd",
        abstract: "The tunnelmesh agent: mutually authenticated TLS 1.3 tunnels to every peer in mesh.json.",
        discussion: "Exit status: 0 after a clean shutdown, 1 on a runtime failure, 2 on a config or certificate error."
    )

    @Option(name: .long, help: "Path to mesh.json.")
    var config: String

    @Option(name: .long, help: "This node's name (default: MESHD_NODE from the environment, else the name in its certificate).")
    var node: String?

    /// `--node`, else a non-empty `MESHD_NODE`: under systemd, /etc/meshd/meshd.env names the node
    /// once for both the agent and the socket generator, and the unit needs no per-node option.
    var requestedNode: String? {
        if let node = self.node { return node }
        guard let named = ProcessInfo.processInfo.environment["MESHD_NODE"], !named.isEmpty else { return nil }
        return named
    }

    @Option(name: .long, help: "Log level: trace, debug, info, notice, warning, error.")
    var logLevel: String = "info"

    @Option(
        name: .customLong("debug-stall-event-loop-after"),
        help: ArgumentHelp(
            "Test only: after SECONDS, block one event loop until shutdown, to prove the systemd watchdog stops pinging.",
            valueName: "SECONDS"
        )
    )
    var debugStallEventLoopAfter: Double?

    static func main() async {
        do {
            let meshd = try parse()
            try await meshd.run()
        } catch let error as StartupError {
            FileHandle.standardError.write(Data("meshd: \(error.message)\n".utf8))
            Foundation.exit(error.code)
        } catch {
            // Usage errors exit 2, as README's meshctl/meshd exit codes say (ArgumentParser uses 64).
            let code = exitCode(for: error)
            let message = fullMessage(for: error)
            // --help, --generate-completion-script and --experimental-dump-help end here with
            // success: their text is the command's output (the package's completions and man page
            // are made from it), so it goes to stdout like any command's.
            let output = code == .success ? FileHandle.standardOutput : FileHandle.standardError
            if !message.isEmpty { output.write(Data("\(message)\n".utf8)) }
            Foundation.exit(code == .validationFailure ? 2 : code.rawValue)
        }
    }

    func validate() throws {
        guard Logger.Level(rawValue: self.logLevel) != nil else {
            throw ValidationError("--log-level must be one of: trace, debug, info, notice, warning, error, critical")
        }
        if let seconds = self.debugStallEventLoopAfter, !(seconds >= 0 && seconds < 86_400) {
            throw ValidationError("--debug-stall-event-loop-after must be between 0 and 86400 seconds")
        }
    }

    func run() async throws {
        let level = Logger.Level(rawValue: self.logLevel) ?? .info
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = level
            return handler
        }
        let logger = Logger(label: "meshd")
        let files = OpenFileLimit.raiseToHardLimit()
        if files.failure == nil { logger.info("\(files)") } else { logger.warning("\(files)") }
        let startup = try Startup.load(configPath: self.config, node: self.requestedNode)
        let passed = try SystemdListeners.adopt(config: startup.config, node: startup.node, logger: logger)

        let group = MultiThreadedEventLoopGroup(numberOfThreads: System.coreCount)
        let mesh = MeshNode(
            config: startup.config,
            node: startup.node,
            group: group,
            serverTLS: startup.serverTLS,
            clientTLS: startup.clientTLS,
            logger: logger,
            inheritedListeners: passed
        )
        let balancers = BalancerHost(node: mesh, group: group, logger: logger, tls: startup.balancerTLS)
        let systemd = SystemdIntegration(
            mesh: mesh,
            group: group,
            statusLine: StatusLine(parts: [{ balancers.routeSummary() }]),
            stallAfter: self.debugStallEventLoopAfter.map { .milliseconds(Int64($0 * 1000)) },
            logger: logger
        )
        var service = MeshNodeService(node: mesh, balancers: balancers, grace: startup.config.tunnel.shutdownGrace)
        service.onStarted = { systemd.started(.listeners) }
        let configSHA256: String
        do {
            configSHA256 = try FileDigest.sha256(ofFile: self.config)
        } catch {
            throw StartupError(code: 2, message: "\(error)")
        }
        var control = ControlService(
            node: mesh,
            balancers: balancers,
            config: startup.config,
            configSHA256: configSHA256,
            certificateNotAfter: startup.serverTLS.certificateNotAfter,
            startedAt: Date(),
            group: group,
            logger: logger
        )
        // Before anything creates a swift-metrics instrument: they bind to the backend at creation.
        control.metrics.bootstrapMetricsSystem()
        let reloader = Reloader(
            configPath: self.config,
            node: startup.node,
            mesh: mesh,
            balancers: balancers,
            api: control.server.api,
            logger: logger
        )
        control.onStarted = { systemd.started(.control) }
        control.server.api.onReload { await systemd.reload { await reloader.reload() } }
        let hangup = await HangupService { _ = await systemd.reload { await reloader.reload() } }
        let serviceGroup = ServiceGroup(
            configuration: .init(
                // Shutdown runs in reverse order: systemd's service first (STOPPING=1), the node last.
                services: [.init(service: service), .init(service: control), .init(service: hangup), .init(service: systemd.service)],
                gracefulShutdownSignals: [.sigterm, .sigint],
                logger: logger
            )
        )
        do {
            try await serviceGroup.run()
        } catch {
            logger.error("meshd stopped: \(error)")
            try? await group.shutdownGracefully()
            throw StartupError(code: 1, message: "\(error)")
        }
        try? await group.shutdownGracefully()
        logger.info("meshd stopped")
    }
}
