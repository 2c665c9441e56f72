import MeshConfig

/// Where a served stream connects on this node: the service's target, and how many connections
/// to it `SpareConnections` keeps open ahead of streams (the service's `preconnect`).
struct LocalTarget: Sendable, Hashable {
    let endpoint: Endpoint
    let preconnect: Int

    init(_ endpoint: Endpoint, preconnect: Int = 0) {
        self.endpoint = endpoint
        self.preconnect = preconnect
    }
}
