import NIOConcurrencyHelpers

/// The live `rw` sessions of this agent's balancers, by balancer and node, so that a node that stops
/// being the primary loses them at once: no application keeps writing into a demoted node (what
/// HAProxy calls `on-marked-down shutdown-sessions`). Each `BalancerSession` adds itself when routed
/// and removes itself when it ends. Safe to use from any thread.
final class WriteSessions: Sendable {
    private struct Key: Hashable {
        var balancer: String
        var node: String
    }

    private let sessions = NIOLockedValueBox<[Key: [ObjectIdentifier: BalancerSession]]>([:])

    func add(_ session: BalancerSession, node: String) {
        let key = Key(balancer: session.balancer, node: node)
        self.sessions.withLockedValue { $0[key, default: [:]][session.id] = session }
    }

    func remove(_ session: BalancerSession, node: String) {
        let key = Key(balancer: session.balancer, node: node)
        self.sessions.withLockedValue { sessions in
            sessions[key]?.removeValue(forKey: session.id)
            if sessions[key]?.isEmpty == true { sessions.removeValue(forKey: key) }
        }
    }

    /// Nodes of `balancer` with open rw sessions.
    func nodes(balancer: String) -> [String] {
        self.sessions.withLockedValue { $0.keys.filter { $0.balancer == balancer }.map(\.node) }
    }

    /// Cuts every rw session of `balancer` on `node` (see `BalancerSession.cut`); returns how many
    /// there were.
    func cut(balancer: String, node: String) -> Int {
        let cut = self.sessions.withLockedValue { $0.removeValue(forKey: Key(balancer: balancer, node: node)) ?? [:] }
        for session in cut.values { session.cut() }
        return cut.count
    }
}
