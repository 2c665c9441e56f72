/// A named service: what it connects to on each node that serves it, and who may open it.
public struct ServiceSettings: Sendable, Equatable {
    public var name: String
    /// Node name -> the local target on that node (TCP or Unix socket).
    public var on: [String: Endpoint]
    /// Absent "allow" means no peer may open it: access is never granted by default.
    public var allow: AllowList
    /// Present when the service is PostgreSQL and should be probed for role and lag.
    public var postgres: PostgresSettings?

    public init(name: String, on: [String: Endpoint], allow: AllowList = .nodes([]), postgres: PostgresSettings? = nil) {
        self.name = name
        self.on = on
        self.allow = allow
        self.postgres = postgres
    }
}
