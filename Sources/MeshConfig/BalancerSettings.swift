/// The balancer's local listeners on one node: read-write (to the primary) and read-only (to standbys).
public struct BalancerListeners: Sendable, Equatable {
    public var rw: Endpoint?
    public var ro: Endpoint?

    public init(rw: Endpoint? = nil, ro: Endpoint? = nil) {
        self.rw = rw
        self.ro = ro
    }
}

/// Where read-only connections go when no standby is healthy.
public enum ReadFallback: String, Sendable, Equatable {
    /// Send them to the primary.
    case primary
    /// Refuse them.
    case none
}

/// A PostgreSQL balancer: which service it routes to and where it listens on each node.
public struct BalancerSettings: Sendable, Equatable {
    public var name: String
    /// A service that has a `postgres` block.
    public var service: String
    public var on: [String: BalancerListeners]
    /// Standbys lagging more than this are not used for reads. Default 10s.
    public var maxLag: Duration
    public var roFallback: ReadFallback

    public init(
        name: String, service: String, on: [String: BalancerListeners], maxLag: Duration = .seconds(10),
        roFallback: ReadFallback = .primary
    ) {
        self.name = name
        self.service = service
        self.on = on
        self.maxLag = maxLag
        self.roFallback = roFallback
    }

    /// Socket-activation names of the listeners: "<balancer>-rw" and "<balancer>-ro".
    public var rwListenerName: String { "\(name)-rw" }
    public var roListenerName: String { "\(name)-ro" }
}
