import NIOConcurrencyHelpers

/// The live connections of this agent's balancers, per balancer, listener and database node: the
/// "fewest active connections" of read routing and the CONNS column of `meshctl backends`.
/// Safe to use from any thread.
public final class ConnectionCounts: Sendable {
    /// Where one counted connection went; hand it back to `close` exactly once.
    public struct Lease: Sendable, Hashable {
        public var balancer: String
        public var listener: ListenerKind
        public var node: String
    }

    private let counts = NIOLockedValueBox<[Lease: Int]>([:])

    public init() {}

    /// Chooses a node with `choose` (given each node's live connection count in `balancer`, both
    /// listeners together) and counts the new connection, under one lock so that concurrent picks see
    /// each other. Returns the lease, or the choice's failure.
    public func open<Failure: Error>(
        balancer: String,
        listener: ListenerKind,
        choosing choose: ([String: Int]) -> Result<String, Failure>
    ) -> Result<Lease, Failure> {
        self.counts.withLockedValue { counts in
            var perNode: [String: Int] = [:]
            for (lease, count) in counts where lease.balancer == balancer { perNode[lease.node, default: 0] += count }
            return choose(perNode).map { node in
                let lease = Lease(balancer: balancer, listener: listener, node: node)
                counts[lease, default: 0] += 1
                return lease
            }
        }
    }

    /// Ends a connection counted by `open`.
    public func close(_ lease: Lease) {
        self.counts.withLockedValue { counts in
            guard let count = counts[lease] else { return }
            counts[lease] = count > 1 ? count - 1 : nil
        }
    }

    /// Live connections of `balancer` to `node` on `listener`.
    public func count(balancer: String, listener: ListenerKind, node: String) -> Int {
        self.counts.withLockedValue { $0[Lease(balancer: balancer, listener: listener, node: node)] ?? 0 }
    }

    /// Every non-zero count.
    public func snapshot() -> [Lease: Int] {
        self.counts.withLockedValue { $0 }
    }
}
