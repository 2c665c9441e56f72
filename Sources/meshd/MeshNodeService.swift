import MeshTunnel
import ServiceLifecycle

/// Runs a `MeshNode` under swift-service-lifecycle: start, wait for SIGTERM, drain, stop.
struct MeshNodeService: Service {
    let node: MeshNode
    let grace: Duration
    /// Called once every listener is open (systemd's READY=1 waits for it).
    var onStarted: @Sendable () -> Void = {}

    func run() async throws {
        try await self.node.start()
        self.onStarted()
        try? await gracefulShutdown()
        await self.node.shutdown(grace: self.grace)
    }
}
