import MeshTunnel
import NIOConcurrencyHelpers
import NIOCore

/// The live `rw` sessions of this agent's balancers, by balancer and node, so that a node that stops
/// being the primary loses them at once: no application keeps writing into a demoted node (what
/// HAProxy calls `on-marked-down shutdown-sessions`). Safe to use from any thread.
final class WriteSessions: Sendable {
    private struct Key: Hashable {
        var balancer: String
        var node: String
    }

    private let sessions = NIOLockedValueBox<[Key: [ObjectIdentifier: Channel]]>([:])

    /// Tracks `channel` until it closes.
    func add(_ channel: Channel, balancer: String, node: String) {
        let key = Key(balancer: balancer, node: node)
        let id = ObjectIdentifier(channel)
        self.sessions.withLockedValue { $0[key, default: [:]][id] = channel }
        channel.closeFuture.whenComplete { _ in
            self.sessions.withLockedValue { sessions in
                sessions[key]?.removeValue(forKey: id)
                if sessions[key]?.isEmpty == true { sessions.removeValue(forKey: key) }
            }
        }
    }

    /// Nodes of `balancer` with open rw sessions.
    func nodes(balancer: String) -> [String] {
        self.sessions.withLockedValue { $0.keys.filter { $0.balancer == balancer }.map(\.node) }
    }

    /// Resets every rw session of `balancer` on `node`; returns how many there were. A reset, not a
    /// FIN: the client must see its session cut, not ended.
    func cut(balancer: String, node: String) -> Int {
        let channels = self.sessions.withLockedValue { $0.removeValue(forKey: Key(balancer: balancer, node: node)) ?? [:] }
        for channel in channels.values { TCPReset.reset(channel) }
        return channels.count
    }
}
