/// One thing a reload would change on a node, as `POST /v1/reload?dry_run=true` lists it for
/// `meshctl reload --dry-run` and `meshctl check --against`.
///
/// Stable API: fields are added, never renamed or removed.
public struct ConfigChange: Codable, Sendable, Equatable {
    /// What changes, in the order the changes are shown.
    public enum Kind: String, Codable, Sendable, CaseIterable {
        /// A tunnel to a peer (`name` is the peer).
        case tunnel
        /// A local listener: a forward or a balancer's `rw`/`ro` (`name` is its socket-activation name).
        case listener
        /// A service this node serves, or one a balancer here routes to.
        case service
        /// A balancer with listeners on this node.
        case balancer
    }

    public enum Action: String, Codable, Sendable {
        /// Tunnels, services, balancers that come.
        case added
        /// Tunnels that close (their streams are reset); listeners that close.
        case closed
        /// Tunnels built afresh while the peer stays declared (a changed address or CA bundle).
        case redialed
        /// Listeners that open.
        case opened
        /// Services and balancers that go.
        case removed
        /// Services and balancers whose settings change (`detail` names the fields).
        case changed
    }

    public var kind: Kind
    public var action: Action
    public var name: String
    /// Why or how, in words: an address, the fields that changed, the reason for a redial.
    public var detail: String?

    public init(_ kind: Kind, _ action: Action, _ name: String, detail: String? = nil) {
        self.kind = kind
        self.action = action
        self.name = name
        self.detail = detail
    }

    enum CodingKeys: String, CodingKey {
        case kind, action, name, detail
    }

    public func encode(to encoder: Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(self.kind, forKey: .kind)
        try container.encode(self.action, forKey: .action)
        try container.encode(self.name, forKey: .name)
        try container.encode(self.detail, forKey: .detail)
    }
}
