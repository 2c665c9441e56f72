import Foundation

/// `GET /v1/status`: who this agent is, what it loaded, and how its tunnels and certificate stand.
///
/// Stable API: fields are added, never renamed or removed. JSON keys are the snake_case names below.
public struct AgentStatus: Codable, Sendable, Equatable {
    public var node: String
    public var mesh: String
    public var version: String
    public var uptimeSeconds: Int
    /// The config file as meshd was given it.
    public var configFile: String
    /// Lowercase hex SHA-256 of the config file's bytes as last loaded.
    public var configSHA256: String
    public var lastReload: ReloadOutcome
    public var peersUp: Int
    public var peersTotal: Int
    /// This node's own certificate expiry; nil if the agent could not read it.
    public var certificateNotAfter: Date?
    /// Whole days until `certificateNotAfter` (negative once expired).
    public var certificateDaysLeft: Int?

    public init(
        node: String,
        mesh: String,
        version: String,
        uptimeSeconds: Int,
        configFile: String,
        configSHA256: String,
        lastReload: ReloadOutcome,
        peersUp: Int,
        peersTotal: Int,
        certificateNotAfter: Date?,
        certificateDaysLeft: Int?
    ) {
        self.node = node
        self.mesh = mesh
        self.version = version
        self.uptimeSeconds = uptimeSeconds
        self.configFile = configFile
        self.configSHA256 = configSHA256
        self.lastReload = lastReload
        self.peersUp = peersUp
        self.peersTotal = peersTotal
        self.certificateNotAfter = certificateNotAfter
        self.certificateDaysLeft = certificateDaysLeft
    }

    enum CodingKeys: String, CodingKey {
        case node, mesh, version
        case uptimeSeconds = "uptime_seconds"
        case configFile = "config_file"
        case configSHA256 = "config_sha256"
        case lastReload = "last_reload"
        case peersUp = "peers_up"
        case peersTotal = "peers_total"
        case certificateNotAfter = "certificate_not_after"
        case certificateDaysLeft = "certificate_days_left"
    }

    /// Writes `null` for absent optionals so every key is always present for scripts.
    public func encode(to encoder: Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(self.node, forKey: .node)
        try container.encode(self.mesh, forKey: .mesh)
        try container.encode(self.version, forKey: .version)
        try container.encode(self.uptimeSeconds, forKey: .uptimeSeconds)
        try container.encode(self.configFile, forKey: .configFile)
        try container.encode(self.configSHA256, forKey: .configSHA256)
        try container.encode(self.lastReload, forKey: .lastReload)
        try container.encode(self.peersUp, forKey: .peersUp)
        try container.encode(self.peersTotal, forKey: .peersTotal)
        try container.encode(self.certificateNotAfter, forKey: .certificateNotAfter)
        try container.encode(self.certificateDaysLeft, forKey: .certificateDaysLeft)
    }

    /// Below this many days left, `meshctl status` warns about the certificate.
    public static let certificateWarningDays = 14

    /// Whole days from `now` until `notAfter`, rounded down (so 23 hours left is 0 days).
    public static func daysLeft(until notAfter: Date, now: Date) -> Int {
        Int((notAfter.timeIntervalSince(now) / 86_400).rounded(.down))
    }
}
