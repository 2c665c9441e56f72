import NIOConcurrencyHelpers

/// How every connection a balancer on this agent took ended up, counted by balancer, listener,
/// node and result: `meshd_balancer_connections_total`. Safe to use from any thread.
public final class BalancerOutcomes: Sendable {
    public enum Result: String, Sendable, Hashable, CaseIterable {
        /// Routed to a node and joined to a stream through the tunnel.
        case routed
        /// No node qualified (no primary, split brain, no standby and `ro_fallback: none`): 57P03.
        case refused
        /// A node was chosen but the tunnel or the stream to it failed: 08006.
        case failed
    }

    public struct Key: Sendable, Hashable {
        public var balancer: String
        public var listener: ListenerKind
        /// The chosen node; `none` when the connection was refused before a node was chosen.
        public var node: String
        public var result: Result

        public init(balancer: String, listener: ListenerKind, node: String, result: Result) {
            self.balancer = balancer
            self.listener = listener
            self.node = node
            self.result = result
        }
    }

    /// The `node` label of a connection refused before a node was chosen.
    public static let noNode = "none"

    private let counts = NIOLockedValueBox<[Key: UInt64]>([:])

    public init() {}

    public func count(_ key: Key) {
        self.counts.withLockedValue { $0[key, default: 0] += 1 }
    }

    /// Every count so far; counts only grow.
    public func snapshot() -> [Key: UInt64] {
        self.counts.withLockedValue { $0 }
    }
}
