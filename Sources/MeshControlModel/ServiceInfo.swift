/// One element of `GET /v1/services`: a service this node serves, or a forward it runs.
///
/// Stable API: fields are added, never renamed or removed. Fields that do not apply to the role are `null`.
public struct ServiceInfo: Codable, Sendable, Equatable {
    /// `served`: peers may open it here; `forward`: a local listener carried to a service on a peer.
    public enum Role: String, Codable, Sendable {
        case served, forward
    }

    /// The service name.
    public var name: String
    public var role: Role
    /// Served: the local address the service connects to, e.g. `127.0.0.1:5432`.
    public var target: String?
    /// Forward: the local listener, e.g. `127.0.0.1:15432`.
    public var listen: String?
    /// Forward: where connections go, `service@node`.
    public var to: String?
    /// Served: the nodes that may open it; `["*"]` means every declared node.
    public var allow: [String]?

    public init(name: String, role: Role, target: String? = nil, listen: String? = nil, to: String? = nil, allow: [String]? = nil) {
        self.name = name
        self.role = role
        self.target = target
        self.listen = listen
        self.to = to
        self.allow = allow
    }

    enum CodingKeys: String, CodingKey {
        case name, role, target, listen, to, allow
    }

    public func encode(to encoder: Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(self.name, forKey: .name)
        try container.encode(self.role, forKey: .role)
        try container.encode(self.target, forKey: .target)
        try container.encode(self.listen, forKey: .listen)
        try container.encode(self.to, forKey: .to)
        try container.encode(self.allow, forKey: .allow)
    }
}
