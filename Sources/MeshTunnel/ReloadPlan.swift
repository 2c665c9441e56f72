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
struct ReloadPlan: Equatable, Sendable {
    var removedPeers: [String] = []
    var addedPeers: [String] = []
    var removedForwards: [ForwardKey] = []
    /// Opened before the commit.
    var openedForwards: [ForwardSettings] = []
    /// Opened after the commit, once the forward they replace has closed.
    var deferredForwards: [ForwardSettings] = []

    /// - node: this node's name.
    /// - links: the peers this node has a link to now, with the address each link uses.
    /// - forwards: the forwards listening now.
    static func make(
        node: String,
        running old: MeshConfiguration,
        new config: MeshConfiguration,
        links: [String: Endpoint],
        forwards: Set<ForwardKey>
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
        return plan
    }
}
