import Foundation

/// One element of `GET /v1/backends`: a database node as a balancer on this agent sees it.
/// The list stays empty until the balancer exists.
///
/// Stable API: fields are added, never renamed or removed.
public struct BackendInfo: Codable, Sendable, Equatable {
    public var balancer: String
    public var service: String
    public var node: String
    /// `primary`, `standby` or `unknown`.
    public var role: String
    public var healthy: Bool
    public var lagSeconds: Double?
    public var lastError: String?

    public init(balancer: String, service: String, node: String, role: String, healthy: Bool, lagSeconds: Double? = nil, lastError: String? = nil) {
        self.balancer = balancer
        self.service = service
        self.node = node
        self.role = role
        self.healthy = healthy
        self.lagSeconds = lagSeconds
        self.lastError = lastError
    }

    enum CodingKeys: String, CodingKey {
        case balancer, service, node, role, healthy
        case lagSeconds = "lag_seconds"
        case lastError = "last_error"
    }
}
