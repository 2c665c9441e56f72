/// Where a database node's meshd asks its own Patroni how Patroni sees that node and its cluster:
/// the `patroni` key of a `postgres` block names another service whose `on` gives each node's
/// Patroni REST API. The addresses are resolved when the file is loaded, so a reload that moves an
/// API restarts the probe like any other change to the block.
public struct PatroniSettings: Sendable, Equatable {
    /// The service named by `"patroni"`.
    public var service: String
    /// Node -> `host:port` of its Patroni REST API (that service's target on the node).
    public var api: [String: Endpoint]

    public init(service: String, api: [String: Endpoint]) {
        self.service = service
        self.api = api
    }
}
