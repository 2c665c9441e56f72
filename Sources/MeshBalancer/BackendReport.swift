import Foundation

/// What a database node's role probe found about its own PostgreSQL at one moment. Published to
/// every peer; the routing decisions of every balancer are made from these reports.
public struct BackendReport: Sendable, Equatable {
    /// The role PostgreSQL reports (`pg_is_in_recovery()`).
    public enum Role: String, Sendable, Codable {
        case primary
        case standby
    }

    /// A successful probe's findings.
    public struct Status: Sendable, Equatable {
        public var role: Role
        /// The primary's current timeline; a standby's last checkpoint timeline.
        public var timeline: UInt32
        /// The primary's current WAL position; a standby's last replayed position.
        public var lsn: WALPosition
        /// How far a standby's replay is behind; zero when it has replayed all it received and is still
        /// streaming, nil on a primary or when unknown (no transaction replayed yet).
        public var replayLag: Duration?
        /// Replay paused with `pg_wal_replay_pause()`: the standby no longer moves forward.
        public var replayPaused: Bool

        public init(role: Role, timeline: UInt32, lsn: WALPosition, replayLag: Duration? = nil, replayPaused: Bool = false) {
            self.role = role
            self.timeline = timeline
            self.lsn = lsn
            self.replayLag = replayLag
            self.replayPaused = replayPaused
        }
    }

    /// The probe's outcome.
    public enum Health: Sendable, Equatable {
        case up(Status)
        /// The probe failed; the error as the probe saw it (connection refused, authentication, ...).
        case down(error: String)
    }

    /// The service (with a `postgres` block) whose PostgreSQL was probed.
    public var service: String
    /// The database node that probed its own PostgreSQL.
    public var node: String
    /// Random per probe run, so reports from a restarted node are not taken for old ones.
    public var runID: UInt64
    /// Increases by one per probe within a run; a registry ignores reports older than what it has.
    public var sequence: UInt64
    /// The reporting node's clock when the probe finished; shown to people, never used for expiry.
    public var reportedAt: Date
    public var health: Health
    /// What the node's Patroni said in the same probe cycle; nil when the service has no `patroni`
    /// key, or the report came from a meshd that predates it.
    public var patroni: PatroniStatus?

    public init(
        service: String,
        node: String,
        runID: UInt64,
        sequence: UInt64,
        reportedAt: Date,
        health: Health,
        patroni: PatroniStatus? = nil
    ) {
        self.service = service
        self.node = node
        self.runID = runID
        self.sequence = sequence
        self.reportedAt = reportedAt
        self.health = health
        self.patroni = patroni
    }

    public var status: Status? {
        if case .up(let status) = self.health { return status }
        return nil
    }
}

extension BackendReport: Codable {
    // A flat JSON shape that reads well in logs and over the tunnel, lag in seconds.
    enum CodingKeys: String, CodingKey {
        case service, node, sequence, role, timeline, lsn, error
        case runID = "run_id"
        case reportedAt = "reported_at"
        case state
        case replayLagSeconds = "replay_lag_seconds"
        case replayPaused = "replay_paused"
        case patroni
    }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        self.service = try container.decode(String.self, forKey: .service)
        self.node = try container.decode(String.self, forKey: .node)
        self.runID = try container.decode(UInt64.self, forKey: .runID)
        self.sequence = try container.decode(UInt64.self, forKey: .sequence)
        self.reportedAt = Date(timeIntervalSince1970: try container.decode(Double.self, forKey: .reportedAt))
        // Absent from older meshd; one that cannot be read must not cost PostgreSQL's part of the report.
        do {
            self.patroni = try container.decodeIfPresent(PatroniStatus.self, forKey: .patroni)
        } catch {
            self.patroni = .unanswered(error: "unreadable Patroni state in the report (\(error))")
        }
        switch try container.decode(String.self, forKey: .state) {
        case "up":
            let lsnText = try container.decode(String.self, forKey: .lsn)
            guard let lsn = WALPosition(lsnText) else {
                throw DecodingError.dataCorruptedError(forKey: .lsn, in: container, debugDescription: "not an LSN: \(lsnText)")
            }
            let lag = try container.decodeIfPresent(Double.self, forKey: .replayLagSeconds)
            self.health = .up(
                Status(
                    role: try container.decode(Role.self, forKey: .role),
                    timeline: try container.decode(UInt32.self, forKey: .timeline),
                    lsn: lsn,
                    replayLag: lag.map { .milliseconds(Int64(($0 * 1000).rounded())) },
                    replayPaused: try container.decode(Bool.self, forKey: .replayPaused)
                )
            )
        case "down":
            self.health = .down(error: try container.decode(String.self, forKey: .error))
        case let other:
            throw DecodingError.dataCorruptedError(
                forKey: .state,
                in: container,
                debugDescription: "state must be \"up\" or \"down\", not \"\(other)\""
            )
        }
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(self.service, forKey: .service)
        try container.encode(self.node, forKey: .node)
        try container.encode(self.runID, forKey: .runID)
        try container.encode(self.sequence, forKey: .sequence)
        try container.encode(self.reportedAt.timeIntervalSince1970, forKey: .reportedAt)
        try container.encodeIfPresent(self.patroni, forKey: .patroni)
        switch self.health {
        case .up(let status):
            try container.encode("up", forKey: .state)
            try container.encode(status.role, forKey: .role)
            try container.encode(status.timeline, forKey: .timeline)
            try container.encode(status.lsn.description, forKey: .lsn)
            try container.encodeIfPresent(status.replayLag?.seconds, forKey: .replayLagSeconds)
            try container.encode(status.replayPaused, forKey: .replayPaused)
        case .down(let error):
            try container.encode("down", forKey: .state)
            try container.encode(error, forKey: .error)
        }
    }
}

extension Duration {
    /// The duration in seconds, for display and JSON.
    var seconds: Double {
        let (seconds, attoseconds) = self.components
        return Double(seconds) + Double(attoseconds) / 1e18
    }
}
