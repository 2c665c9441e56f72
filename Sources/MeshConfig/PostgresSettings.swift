/// How a node probes its local PostgreSQL for role, timeline and lag.
public struct PostgresSettings: Sendable, Equatable {
    /// "monitor_user", default "meshmon".
    public var monitorUser: String
    /// "database", default "postgres".
    public var database: String
    /// "password_file", absolute; nil when the monitor user needs no password.
    public var passwordFile: String?
    /// "probe_interval", default 1s.
    public var probeInterval: Duration
    /// "patroni": this node's Patroni REST API is asked in each probe cycle; nil without the key.
    public var patroni: PatroniSettings?

    public init(
        monitorUser: String = "meshmon",
        database: String = "postgres",
        passwordFile: String? = nil,
        probeInterval: Duration = .seconds(1),
        patroni: PatroniSettings? = nil
    ) {
        self.monitorUser = monitorUser
        self.database = database
        self.passwordFile = passwordFile
        self.probeInterval = probeInterval
        self.patroni = patroni
    }
}
