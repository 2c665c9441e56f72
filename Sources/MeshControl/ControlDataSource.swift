import MeshTunnel

/// What the control API reads from the running agent: the node's name, its peers, and PING round
/// trips. `MeshNode` is the real source; tests may serve a fixed one through the same server.
public protocol ControlDataSource: Sendable {
    var name: String { get }
    /// Every declared peer, sorted by name.
    func peerStatuses() -> [PeerStatus]
    /// One round trip through the tunnel to `peer`; throws when no tunnel to it is up.
    func ping(peer: String) async throws -> Duration
}

extension MeshNode: ControlDataSource {
    public func peerStatuses() -> [PeerStatus] {
        self.peers.snapshot()
    }
}
