import Foundation
import Logging
import MeshBalancer
import MeshConfig
import MeshControl
import MeshTunnel
import NIOCore
import ServiceLifecycle

/// Serves the control API on this node's socket (`nodes.<name>.control`), and `/metrics` on mesh.json's
/// "metrics" address when set, for as long as the agent runs; on graceful shutdown it stops
/// accepting and removes the socket file.
struct ControlService: Service {
    static let version = "0.1.0"

    let server: ControlServer
    /// Read at each scrape of `/metrics`, on the control socket and on `metricsServer`.
    let metrics: MeshMetrics
    let metricsServer: MetricsServer?
    /// Called once the control socket accepts connections (systemd's READY=1 waits for it).
    var onStarted: @Sendable () -> Void = {}

    init(
        node: MeshNode,
        balancers host: BalancerHost,
        config: MeshConfiguration,
        configSHA256: String,
        certificateNotAfter: Date?,
        startedAt: Date,
        group: EventLoopGroup,
        logger: Logger
    ) {
        let facts = AgentFacts(
            config: config,
            node: node.name,
            version: Self.version,
            startedAt: startedAt,
            configSHA256: configSHA256,
            certificateNotAfter: certificateNotAfter
        )
        let socketPath = config.nodes[node.name]?.control ?? NodeSettings.defaultControl
        let balancers = BalancerView(
            node: node.name,
            config: { node.config },
            registry: host.registry,
            connections: host.counts,
            outcomes: host.outcomes
        )
        let metrics = MeshMetrics(source: node, balancers: balancers)
        self.metrics = metrics
        self.server = ControlServer(
            socketPath: socketPath,
            api: ControlAPI(source: node, facts: facts, metrics: metrics, balancers: balancers),
            group: group,
            logger: logger
        )
        self.metricsServer = config.metrics.map { MetricsServer(endpoint: $0, metrics: metrics, group: group, logger: logger) }
    }

    func run() async throws {
        try await self.server.start()
        do {
            try await self.metricsServer?.start()
        } catch {
            await self.server.stop()
            throw error
        }
        self.onStarted()
        try? await gracefulShutdown()
        await self.metricsServer?.stop()
        await self.server.stop()
    }
}
