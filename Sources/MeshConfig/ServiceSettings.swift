/// A named service: what it connects to on each node that serves it, and who may open it.
public struct ServiceSettings: Sendable, Equatable {
    public var name: String
    /// Node name -> the local target on that node (TCP or Unix socket).
    public var on: [String: Endpoint]
    /// Absent "allow" means no peer may open it: access is never granted by default.
    public var allow: AllowList
    /// Present when the service is PostgreSQL and should be probed for role and lag.
    public var postgres: PostgresSettings?
    /// "same_address": each node's target is reachable at that same address from every other
    /// allowed node, where meshd listens on it and forwards to the service on its node. Clustered
    /// software (etcd, Patroni, replication) advertises one address per member and expects every
    /// member to reach it; this gives it that without N x (N-1) hand-written forwards.
    public var sameAddress: Bool
    /// "preconnect": how many connections to its target each node serving the service keeps open
    /// ahead of any stream, per event loop that served it lately (0: none). A stream then finds
    /// its target connected, and for PostgreSQL the backend's fork is off the client's path. Only
    /// for protocols where the client speaks first; a target that speaks first turns it off.
    public var preconnect: Int

    /// The most `preconnect` allows: spares hold server resources (a forked backend each).
    public static let maximumPreconnect = 16

    public init(
        name: String,
        on: [String: Endpoint],
        allow: AllowList = .nodes([]),
        postgres: PostgresSettings? = nil,
        sameAddress: Bool = false,
        preconnect: Int = 0
    ) {
        self.name = name
        self.on = on
        self.allow = allow
        self.postgres = postgres
        self.sameAddress = sameAddress
        self.preconnect = preconnect
    }

    /// The listeners `same_address` puts on `node`: one per other node serving this service, at
    /// that node's address, named "<service>@<node>" for socket activation. Empty unless the
    /// service has `same_address` and `node` may open it.
    public func sameAddressForwards(on node: String) -> [ForwardSettings] {
        guard self.sameAddress, self.allow.permits(node) else { return [] }
        return self.on.keys.sorted().filter { $0 != node }.map { server in
            ForwardSettings(on: node, listen: self.on[server]!, service: self.name, node: server, listenerName: "\(self.name)@\(server)")
        }
    }
}
