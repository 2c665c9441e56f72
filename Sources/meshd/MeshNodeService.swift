import MeshTunnel
import ServiceLifecycle

/// Runs a `MeshNode` under swift-service-lifecycle: start, wait for SIGTERM, drain, stop.
struct MeshNodeService: Service {
    let node: MeshNode
    let grace: Duration

    func run() async throws {
        try await self.node.start()
        try? await gracefulShutdown()
        await self.node.shutdown(grace: self.grace)
    }
}
