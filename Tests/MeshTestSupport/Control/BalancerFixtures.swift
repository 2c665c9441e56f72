import Foundation
import MeshBalancer
import MeshConfig
import MeshControl
import NIOConcurrencyHelpers
import NIOCore

/// Two balancers on app1 over real registry, connection counts and outcomes, filled with reports and
/// connections that cover every state a backend row can show, judged at one fixed instant.
///
/// `pg` (service postgres, rw + ro): db1 primary, db2 standby 250 ms behind, db3 down (probe failing
/// for 5 s), db4 never reported. `reports` (service reporting, ro only): db5 silent for 12 s (stale,
/// so unknown), db6 a standby with replay paused 42.5 s behind. `elsewhere` listens only on db1, so
/// app1 does not list it.
public struct BalancerFixtures {
    public static let meshJSON = """
        {
          "mesh": "demo",
          "tls": { "ca": "pki/ca.pem", "cert": "pki/{node}.pem", "key": "pki/{node}.key" },
          "nodes": {
            "db1": { "address": "127.0.1.1:7443" }, "db2": { "address": "127.0.1.2:7443" },
            "db3": { "address": "127.0.1.3:7443" }, "db4": { "address": "127.0.1.4:7443" },
            "db5": { "address": "127.0.1.5:7443" }, "db6": { "address": "127.0.1.6:7443" },
            "app1": { "address": "127.0.1.9:7443" }
          },
          "services": {
            "postgres": {
              "on": { "db1": "127.0.0.1:5432", "db2": "127.0.0.1:5432", "db3": "127.0.0.1:5432", "db4": "127.0.0.1:5432" },
              "allow": ["app1"], "postgres": { "probe_interval": "1s" }
            },
            "reporting": {
              "on": { "db5": "127.0.0.1:5433", "db6": "127.0.0.1:5433" }, "allow": ["app1"], "postgres": {}
            }
          },
          "balancers": {
            "pg": { "service": "postgres", "on": { "app1": { "rw": "127.0.0.1:6432", "ro": "127.0.0.1:6433" } } },
            "reports": { "service": "reporting", "on": { "app1": { "ro": "127.0.0.1:6533" } } },
            "elsewhere": { "service": "postgres", "on": { "db1": { "rw": "127.0.0.1:6432" } } }
          }
        }
        """

    /// This agent's monotonic clock when the rows are judged.
    public static let judgedAt = NIODeadline.uptimeNanoseconds(3_600_000_000_000)
    /// The reporting nodes' wall clock at that moment.
    public static let now = ControlFixtures.now

    public static func config(_ text: String = meshJSON) throws -> MeshConfiguration {
        try MeshConfiguration.parse(Data(text.utf8), file: "mesh.json", directory: "/etc/meshd")
    }

    /// `meshJSON` after a reload that removed the `reports` balancer and db4 from postgres.
    public static func reloadedConfig() throws -> MeshConfiguration {
        let text =
            meshJSON
            .replacingOccurrences(of: #""reports": { "service": "reporting", "on": { "app1": { "ro": "127.0.0.1:6533" } } },"#, with: "")
            .replacingOccurrences(of: #", "db4": "127.0.0.1:5432""#, with: "")
        return try self.config(text)
    }

    /// What the view reads as the running config; `reload` replaces it, as meshd's reload does.
    public let running: NIOLockedValueBox<MeshConfiguration>
    public let registry: BackendRegistry
    public let connections = ConnectionCounts()
    public let outcomes = BalancerOutcomes()
    public let view: BalancerView
    /// The view's clock, at `judgedAt` until a test moves it.
    public let clock = NIOLockedValueBox(judgedAt)
    public private(set) var leases: [ConnectionCounts.Lease] = []

    public init() throws {
        let config = try Self.config()
        self.running = NIOLockedValueBox(config)
        self.registry = BackendRegistry(config: config)
        self.view = BalancerView(
            node: "app1",
            config: { [running] in running.withLockedValue { $0 } },
            registry: self.registry,
            connections: self.connections,
            outcomes: self.outcomes,
            now: { [clock] in clock.withLockedValue { $0 } }
        )

        self.record("postgres", "db1", secondsAgo: 0.4, .up(.init(role: .primary, timeline: 2, lsn: WALPosition(0x3_0000_0148))))
        self.record(
            "postgres",
            "db2",
            secondsAgo: 0.2,
            .up(.init(role: .standby, timeline: 2, lsn: WALPosition(0x3_0000_0060), replayLag: .milliseconds(250)))
        )
        let refused = "connection to 127.0.0.1:5432 refused: is PostgreSQL running on db3?"
        self.record("postgres", "db3", sequence: 1, secondsAgo: 5, .down(error: refused))
        self.record("postgres", "db3", sequence: 2, secondsAgo: 0.9, .down(error: refused))
        self.record("reporting", "db5", secondsAgo: 12, .up(.init(role: .standby, timeline: 1, lsn: WALPosition(0x1_0000_0000))))
        self.record(
            "reporting",
            "db6",
            secondsAgo: 0.5,
            .up(.init(role: .standby, timeline: 1, lsn: WALPosition(0xA0_0000_2000), replayLag: .milliseconds(42_500), replayPaused: true))
        )

        for _ in 0..<3 { self.open("pg", .rw, "db1") }
        for _ in 0..<2 { self.open("pg", .ro, "db2") }
        self.open("pg", .ro, "db1")
        self.open("reports", .ro, "db6")

        self.count("pg", .rw, "db1", .routed, times: 5)
        self.count("pg", .rw, "db1", .failed, times: 1)
        self.count("pg", .ro, BalancerOutcomes.noNode, .refused, times: 2)
        self.count("reports", .ro, "db6", .routed, times: 4)
    }

    public func reload(_ config: MeshConfiguration) {
        self.running.withLockedValue { $0 = config }
    }

    public func record(
        _ service: String,
        _ node: String,
        sequence: UInt64 = 1,
        secondsAgo: Double,
        _ health: BackendReport.Health,
        patroni: PatroniStatus? = nil
    ) {
        let report = BackendReport(
            service: service,
            node: node,
            runID: 7,
            sequence: sequence,
            reportedAt: Self.now.addingTimeInterval(-secondsAgo),
            health: health,
            patroni: patroni
        )
        self.registry.record(report, receivedAt: Self.judgedAt - .nanoseconds(Int64(secondsAgo * 1e9)))
    }

    public mutating func open(_ balancer: String, _ listener: ListenerKind, _ node: String) {
        let opened = self.connections.open(balancer: balancer, listener: listener) { _ in Result<String, Never>.success(node) }
        if case .success(let lease) = opened { self.leases.append(lease) }
    }

    public func count(_ balancer: String, _ listener: ListenerKind, _ node: String, _ result: BalancerOutcomes.Result, times: Int) {
        for _ in 0..<times {
            self.outcomes.count(.init(balancer: balancer, listener: listener, node: node, result: result))
        }
    }
}
