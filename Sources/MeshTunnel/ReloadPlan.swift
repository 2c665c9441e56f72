import MeshConfig

/// What a reload changes in one node's tunnels and forwards, worked out from what runs now and the
/// new config alone, before anything is touched. Pure and deterministic (every list sorted), so the
/// rules are tested without sockets; `MeshNode.reload` carries the plan out.
///
/// The rules:
/// - The mesh name, the node's own address and the tunnel settings cannot change while running.
/// - A peer whose address changed is a removed peer plus an added one (its tunnel is re-dialed).
/// - A forward is kept only if all of it is unchanged and its peer was not removed; otherwise the
///   old one closes and a new one opens.
/// - A new forward on an address a removed forward frees can only open after that one closed, so it
///   opens after the commit (`deferredForwards`); every other new forward opens before the commit,
///   and if one cannot, the reload is rejected with nothing changed.
/// - A peer whose live tunnel presented a certificate the new CRL revokes is cut (`revokedPeers`).
/// - When this node's certificate or CA bundle changed, every kept peer's tunnel is authenticated
///   afresh (`reauthenticatedPeers`; `PeerLink.reauthenticate` does it, README "Certificate rotation").
///
/// `MeshNode.plan` computes it for `MeshNode.reload` and for a dry run alike.
public struct ReloadPlan: Equatable, Sendable {
    public internal(set) var removedPeers: [String] = []
    public internal(set) var addedPeers: [String] = []
    public internal(set) var removedForwards: [ForwardKey] = []
    /// Opened before the commit.
    public internal(set) var openedForwards: [ForwardSettings] = []
    /// Opened after the commit, once the forward they replace has closed.
    public internal(set) var deferredForwards: [ForwardSettings] = []
    /// Kept peers whose live tunnel presented a certificate the new CRL revokes.
    public internal(set) var revokedPeers: [String] = []
    /// Kept peers whose tunnel was authenticated with a certificate or CA bundle the reload replaces.
    public internal(set) var reauthenticatedPeers: [String] = []

    /// - node: this node's name.
    /// - links: the peers this node has a link to now, with the address each link uses.
    /// - forwards: the forwards listening now.
    /// - trustChanged: the new certificate or CA bundle differs from what the running tunnels were authenticated with.
    /// - liveSerials: the serial of the certificate each peer presented on its live tunnel.
    /// - revokedSerials: the serials the new CRL revokes.
    static func make(
        node: String,
        running old: MeshConfiguration,
        new config: MeshConfiguration,
        links: [String: Endpoint],
        forwards: Set<ForwardKey>,
        trustChanged: Bool = false,
        liveSerials: [String: String] = [:],
        revokedSerials: Set<String> = []
    ) throws(MeshNode.ReloadError) -> ReloadPlan {
        guard config.mesh == old.mesh else {
            throw MeshNode.ReloadError(
                description: "mesh name changed from \(old.mesh) to \(config.mesh); restart meshd to join another mesh"
            )
        }
        guard config.nodes[node]?.address == old.nodes[node]?.address else {
            throw MeshNode.ReloadError(description: "nodes.\(node).address changed; restart meshd to move the tunnel listener")
        }
        guard config.tunnel == old.tunnel else {
            throw MeshNode.ReloadError(description: "tunnel settings changed; restart meshd to apply them")
        }
        var plan = ReloadPlan()
        plan.removedPeers = links.filter { peer, address in config.nodes[peer]?.address != address }.map(\.key).sorted()
        let removed = Set(plan.removedPeers)
        plan.addedPeers = config.sortedNodeNames.filter { $0 != node && (links[$0] == nil || removed.contains($0)) }

        var wanted: [ForwardKey: ForwardSettings] = [:]
        for forward in config.forwards(on: node) where wanted[ForwardKey(forward)] == nil {
            wanted[ForwardKey(forward)] = forward
        }
        plan.removedForwards = forwards.filter { wanted[$0] == nil || removed.contains($0.node) }
            .sorted { $0.description < $1.description }
        let freed = Set(plan.removedForwards.map(\.listen))
        let added = wanted.filter { key, _ in !forwards.contains(key) || removed.contains(key.node) }
            .values.sorted { "\($0.listen)" < "\($1.listen)" }
        plan.openedForwards = added.filter { !freed.contains($0.listen) }
        plan.deferredForwards = added.filter { freed.contains($0.listen) }

        let kept = links.keys.filter { !removed.contains($0) }.sorted()
        plan.revokedPeers = kept.filter { liveSerials[$0].map(revokedSerials.contains) == true }
        plan.reauthenticatedPeers = trustChanged ? kept.filter { !plan.revokedPeers.contains($0) } : []
        return plan
    }
}
