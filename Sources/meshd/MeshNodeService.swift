import MeshBalancer
import MeshTunnel
import ServiceLifecycle

/// Runs a `MeshNode` and its balancers under swift-service-lifecycle: start, wait for SIGTERM,
/// stop taking PostgreSQL connections, drain, stop.
struct MeshNodeService: Service {
    let node: MeshNode
    let balancers: BalancerHost
    let grace: Duration
    /// Called once every listener is open (systemd's READY=1 waits for it).
    var onStarted: @Sendable () -> Void = {}

    func run() async throws {
        try await self.node.start()
        do {
            try await self.balancers.start()
        } catch {
            await self.node.shutdown(grace: .zero)
            throw error
        }
        self.onStarted()
        try? await gracefulShutdown()
        await self.balancers.stop()
        await self.node.shutdown(grace: self.grace)
    }
}
