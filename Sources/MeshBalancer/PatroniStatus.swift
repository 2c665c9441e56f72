/// How a database node's own Patroni saw that node and its cluster, asked in the same probe cycle
/// as its PostgreSQL. Shown next to PostgreSQL's own report; routing still follows PostgreSQL's
/// role, timeline and lag, and uses this only to keep away from a node whose Patroni says its
/// PostgreSQL is not running.
public enum PatroniStatus: Sendable, Equatable {
    case answered(PatroniState)
    /// No usable answer to `GET /patroni` within the timeout; the error as the probe saw it.
    case unanswered(error: String)

    /// The node's role in the cluster, `unknown` when Patroni did not answer.
    public var role: PatroniState.Role {
        if case .answered(let state) = self { return state.role }
        return .unknown
    }

    /// True when Patroni says PostgreSQL is not running (stopped, stopping, crashed, starting, ...).
    /// Patroni's own `unknown` (its status query failed while the postmaster runs) and no answer at
    /// all leave the decision to PostgreSQL's own report: a dead Patroni does not stop PostgreSQL.
    public var saysPostgresNotRunning: Bool {
        guard case .answered(let state) = self else { return false }
        return state.postgres != PatroniState.running && state.postgres != PatroniState.unknownState
    }
}

/// What Patroni answered: `GET /patroni` for this node, `GET /cluster` for its place in the cluster.
public struct PatroniState: Sendable, Equatable {
    /// The node's role as the DCS records it (`/cluster`'s vocabulary, not PostgreSQL's).
    public enum Role: String, Sendable, CaseIterable {
        case leader
        case standbyLeader = "standby_leader"
        case syncStandby = "sync_standby"
        case replica
        /// Patroni did not answer, `/cluster` did not, or it does not list this node.
        case unknown
    }

    /// Patroni's word for a PostgreSQL that runs normally, and for one it could not query.
    public static let running = "running"
    public static let unknownState = "unknown"

    public var role: Role
    /// PostgreSQL's state in Patroni's words: `running`, `starting`, `stopping`, `stopped`,
    /// `restarting`, `crashed`, `start failed`, ... (kept as text: Patroni has more than a dozen).
    public var postgres: String
    /// The member holding the DCS leader key, by its Patroni name; nil when the key is free or
    /// `/cluster` did not answer.
    public var leader: String?
    /// Patroni's automatic management is paused (`patronictl pause`).
    public var paused: Bool

    public init(role: Role, postgres: String, leader: String? = nil, paused: Bool = false) {
        self.role = role
        self.postgres = postgres
        self.leader = leader
        self.paused = paused
    }
}

extension PatroniStatus: Codable {
    // A nested object in the report: {"role", "state", "leader", "paused"} or {"error"}.
    enum CodingKeys: String, CodingKey {
        case role, state, leader, paused, error
    }

    /// Lenient on purpose: a role a newer Patroni or meshd names is `unknown` here, not a report
    /// that fails to decode (which would drop PostgreSQL's part with it).
    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        if let error = try container.decodeIfPresent(String.self, forKey: .error) {
            self = .unanswered(error: error)
            return
        }
        let role = try container.decodeIfPresent(String.self, forKey: .role).flatMap(PatroniState.Role.init) ?? .unknown
        self = .answered(
            PatroniState(
                role: role,
                postgres: try container.decode(String.self, forKey: .state),
                leader: try container.decodeIfPresent(String.self, forKey: .leader),
                paused: try container.decodeIfPresent(Bool.self, forKey: .paused) ?? false
            )
        )
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        switch self {
        case .answered(let state):
            try container.encode(state.role.rawValue, forKey: .role)
            try container.encode(state.postgres, forKey: .state)
            try container.encodeIfPresent(state.leader, forKey: .leader)
            try container.encode(state.paused, forKey: .paused)
        case .unanswered(let error):
            try container.encode(error, forKey: .error)
        }
    }
}
