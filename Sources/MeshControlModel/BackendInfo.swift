import Foundation

/// One element of `GET /v1/backends`: a database node as a balancer on this agent sees it, from the
/// latest report that node published and the balancer's live connections to it.
///
/// Stable API: fields are added, never renamed or removed. Fields about the database itself
/// (timeline, lsn, lag, replay pause) describe a fresh report of a working PostgreSQL only, as
/// `role` does, and are `null` otherwise: a stale position is not shown as the current one.
public struct BackendInfo: Codable, Sendable, Equatable {
    public var balancer: String
    public var service: String
    public var node: String
    /// `primary`, `standby`, or `unknown` when the node is not `up`.
    public var role: String
    /// True when `state` is `up`: a fresh report of a working PostgreSQL.
    public var healthy: Bool
    /// A standby's replay lag; null on a primary, when not up, or before the standby replayed anything.
    public var lagSeconds: Double?
    /// The failed probe's error, when the latest report is a failure (`down`, or `unknown` once stale).
    public var lastError: String?
    /// `up`, `down` (a fresh report of a failed probe) or `unknown` (no report within 3 probe
    /// intervals, or none at all): only `up` is routable.
    public var state: String
    /// When the current run of failed probes began, by the reporting node's clock; set when `down`.
    public var downSince: Date?
    public var timeline: UInt32?
    /// The primary's current or the standby's replayed WAL position, written `X/Y` as PostgreSQL does.
    public var lsn: String?
    /// Replay paused with `pg_wal_replay_pause()` (a standby that no longer moves forward).
    public var replayPaused: Bool?
    /// Live connections of this balancer to the node through its `rw` and `ro` listeners.
    public var connectionsRW: Int
    public var connectionsRO: Int
    /// The reporting node's clock when it made its latest report; null if none ever came.
    public var lastReport: Date?
    /// How long ago this agent received that report, by its own clock (immune to clock skew).
    public var reportAgeSeconds: Double?
    /// The node's role as its Patroni sees it (`leader`, `standby_leader`, `sync_standby`,
    /// `replica`, or `unknown` when Patroni did not answer); null when the service has no
    /// `patroni` key or the report is not fresh. The fields below come from the same answer.
    public var patroniRole: String?
    /// PostgreSQL's state in Patroni's words (`running`, `stopped`, `starting`, `crashed`, ...);
    /// a node whose Patroni says anything but `running` (or `unknown`) is never routed to.
    public var patroniState: String?
    /// The member holding the DCS leader key, as this node's Patroni sees it; null when the key is free.
    public var patroniLeader: String?
    /// Patroni's automatic management is paused (`patronictl pause`).
    public var patroniPaused: Bool?
    /// Why Patroni gave no answer this time.
    public var patroniError: String?

    public init(
        balancer: String,
        service: String,
        node: String,
        role: String,
        healthy: Bool,
        lagSeconds: Double? = nil,
        lastError: String? = nil,
        state: String? = nil,
        downSince: Date? = nil,
        timeline: UInt32? = nil,
        lsn: String? = nil,
        replayPaused: Bool? = nil,
        connectionsRW: Int = 0,
        connectionsRO: Int = 0,
        lastReport: Date? = nil,
        reportAgeSeconds: Double? = nil,
        patroniRole: String? = nil,
        patroniState: String? = nil,
        patroniLeader: String? = nil,
        patroniPaused: Bool? = nil,
        patroniError: String? = nil
    ) {
        self.balancer = balancer
        self.service = service
        self.node = node
        self.role = role
        self.healthy = healthy
        self.lagSeconds = lagSeconds
        self.lastError = lastError
        self.state = state ?? (healthy ? "up" : "unknown")
        self.downSince = downSince
        self.timeline = timeline
        self.lsn = lsn
        self.replayPaused = replayPaused
        self.connectionsRW = connectionsRW
        self.connectionsRO = connectionsRO
        self.lastReport = lastReport
        self.reportAgeSeconds = reportAgeSeconds
        self.patroniRole = patroniRole
        self.patroniState = patroniState
        self.patroniLeader = patroniLeader
        self.patroniPaused = patroniPaused
        self.patroniError = patroniError
    }

    enum CodingKeys: String, CodingKey {
        case balancer, service, node, role, healthy, state, timeline, lsn
        case lagSeconds = "lag_seconds"
        case lastError = "last_error"
        case downSince = "down_since"
        case replayPaused = "replay_paused"
        case connectionsRW = "connections_rw"
        case connectionsRO = "connections_ro"
        case lastReport = "last_report"
        case reportAgeSeconds = "report_age_seconds"
        case patroniRole = "patroni_role"
        case patroniState = "patroni_state"
        case patroniLeader = "patroni_leader"
        case patroniPaused = "patroni_paused"
        case patroniError = "patroni_error"
    }

    /// Writes `null` for absent optionals so every key is always present for scripts.
    public func encode(to encoder: Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(self.balancer, forKey: .balancer)
        try container.encode(self.service, forKey: .service)
        try container.encode(self.node, forKey: .node)
        try container.encode(self.role, forKey: .role)
        try container.encode(self.healthy, forKey: .healthy)
        try container.encode(self.lagSeconds, forKey: .lagSeconds)
        try container.encode(self.lastError, forKey: .lastError)
        try container.encode(self.state, forKey: .state)
        try container.encode(self.downSince, forKey: .downSince)
        try container.encode(self.timeline, forKey: .timeline)
        try container.encode(self.lsn, forKey: .lsn)
        try container.encode(self.replayPaused, forKey: .replayPaused)
        try container.encode(self.connectionsRW, forKey: .connectionsRW)
        try container.encode(self.connectionsRO, forKey: .connectionsRO)
        try container.encode(self.lastReport, forKey: .lastReport)
        try container.encode(self.reportAgeSeconds, forKey: .reportAgeSeconds)
        try container.encode(self.patroniRole, forKey: .patroniRole)
        try container.encode(self.patroniState, forKey: .patroniState)
        try container.encode(self.patroniLeader, forKey: .patroniLeader)
        try container.encode(self.patroniPaused, forKey: .patroniPaused)
        try container.encode(self.patroniError, forKey: .patroniError)
    }
}
