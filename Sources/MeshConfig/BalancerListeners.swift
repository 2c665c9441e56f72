/// The balancer's local listeners on one node: read-write (to the primary) and read-only (to standbys).
public struct BalancerListeners: Sendable, Equatable {
    public var rw: Endpoint?
    public var ro: Endpoint?

    public init(rw: Endpoint? = nil, ro: Endpoint? = nil) {
        self.rw = rw
        self.ro = ro
    }
}
