import Foundation
import MeshBalancer
import MeshControl
import MeshControlModel
import MeshTestSupport
import MeshTunnel
import XCTest

/// Each node's Patroni state in `meshctl backends`, `/v1/backends` and `/metrics`: the fixture's
/// `pg` nodes report what their Patroni said (db1 leader, db2 sync standby, db3 stopped, db4
/// never reported), `reports`' nodes report no Patroni at all.
final class PatroniBackendsTests: XCTestCase {
    private struct NoPeers: MetricsSource {
        func metricsSnapshot() -> MetricsSnapshot { MetricsSnapshot(peers: []) }
    }

    static func fixtures(db2Leader: String? = "db1", db3Leader: String? = "db1") throws -> BalancerFixtures {
        let fixtures = try BalancerFixtures()
        fixtures.record(
            "postgres",
            "db1",
            sequence: 2,
            secondsAgo: 0.4,
            .up(.init(role: .primary, timeline: 2, lsn: WALPosition(0x3_0000_0148))),
            patroni: .answered(PatroniState(role: .leader, postgres: "running", leader: "db1"))
        )
        fixtures.record(
            "postgres",
            "db2",
            sequence: 2,
            secondsAgo: 0.2,
            .up(.init(role: .standby, timeline: 2, lsn: WALPosition(0x3_0000_0060), replayLag: .milliseconds(250))),
            patroni: .answered(PatroniState(role: .syncStandby, postgres: "running", leader: db2Leader))
        )
        fixtures.record(
            "postgres",
            "db3",
            sequence: 3,
            secondsAgo: 0.9,
            .down(error: "connection to 127.0.0.1:5432 refused: is PostgreSQL running on db3?"),
            patroni: .answered(PatroniState(role: .replica, postgres: "stopped", leader: db3Leader, paused: true))
        )
        return fixtures
    }

    func testTextShowsPatroniAndTheDCSLeader() throws {
        let rows = try Self.fixtures().view.backends().filter { $0.balancer == "pg" }
        XCTAssertEqual(
            BackendsText.render(rows, style: .plain),
            """
            NODE  ROLE     STATE    PATRONI                 TIMELINE  LSN    LAG    CONNS  LAST REPORT  LAST ERROR
            db1   primary  up       leader                  2         3/148  -      3/1    0.4s ago     -
            db2   standby  up       sync_standby            2         3/60   250ms  0/2    0.2s ago     -
            db3   unknown  down     replica stopped paused  -         -      -      0/0    0.9s ago     connection to 127.0.0.1:5432 refused: is Postgr…
            db4   unknown  unknown  -                       -         -      -      0/0    never        -
            DCS leader: db1

            """
        )
    }

    func testTextNamesDisagreeingLeadersAndUnansweredPatroni() throws {
        let fixtures = try Self.fixtures(db2Leader: "db2", db3Leader: nil)
        fixtures.record(
            "postgres",
            "db1",
            sequence: 3,
            secondsAgo: 0.1,
            .up(.init(role: .primary, timeline: 2, lsn: WALPosition(0x3_0000_0148))),
            patroni: .unanswered(error: "Patroni at 127.0.0.1:8008: Connection refused")
        )
        let text = BackendsText.render(fixtures.view.backends(), style: .plain)
        XCTAssertTrue(text.hasSuffix("pg: DCS leader: db2 (db2), none (db3)\nreports: DCS leader: unknown (no Patroni answered)\n"), text)
        XCTAssertTrue(text.contains("pg        db1   primary  up       unknown "), text)
        let coloured = BackendsText.render(fixtures.view.backends(), style: .ansi)
        XCTAssertTrue(coloured.contains("\u{1B}[31mreplica stopped paused\u{1B}[0m"), "a stopped PostgreSQL is red")
        XCTAssertTrue(coloured.contains("\u{1B}[33munknown\u{1B}[0m"), "an unanswered Patroni is yellow")
    }

    func testJSON() throws {
        let rows = try Self.fixtures().view.backends()
        XCTAssertEqual(rows[1].patroniRole, "sync_standby")
        XCTAssertEqual(rows[1].patroniState, "running")
        XCTAssertEqual(rows[1].patroniLeader, "db1")
        XCTAssertEqual(rows[1].patroniPaused, false)
        XCTAssertNil(rows[1].patroniError)
        XCTAssertNil(rows[3].patroniRole, "db4 never reported")
        XCTAssertNil(rows[5].patroniRole, "reports has no patroni key")
        let text = try ControlJSON.text(rows[2])
        for line in [
            #""patroni_error" : null"#, #""patroni_leader" : "db1""#, #""patroni_paused" : true"#, #""patroni_role" : "replica""#,
            #""patroni_state" : "stopped""#,
        ] {
            XCTAssertTrue(text.contains(line), "\(line) in \(text)")
        }
        // meshctl reads what meshd wrote, and what an older meshd wrote without these keys.
        let read = try ControlJSON.decoder().decode(BackendInfo.self, from: Data(text.utf8))
        XCTAssertEqual(
            [read.patroniRole, read.patroniState, read.patroniLeader, read.patroniError],
            [rows[2].patroniRole, rows[2].patroniState, rows[2].patroniLeader, rows[2].patroniError]
        )
        XCTAssertEqual(read.patroniPaused, true)
        var old = try JSONSerialization.jsonObject(with: Data(text.utf8)) as! [String: Any]
        for key in old.keys where key.hasPrefix("patroni_") { old[key] = nil }
        let decoded = try ControlJSON.decoder().decode(BackendInfo.self, from: JSONSerialization.data(withJSONObject: old))
        XCTAssertNil(decoded.patroniRole)
        XCTAssertEqual(decoded.node, "db3")
    }

    func testMetrics() throws {
        let metrics = MeshMetrics(source: NoPeers(), balancers: try Self.fixtures().view)
        let text = try PrometheusText(metrics.scrape())
        XCTAssertEqual(text.families["meshd_backend_patroni_role"]?.type, "gauge")
        XCTAssertEqual(text.value("meshd_backend_patroni_role", ["balancer": "pg", "node": "db1", "role": "leader"]), 1)
        XCTAssertEqual(text.value("meshd_backend_patroni_role", ["balancer": "pg", "node": "db2", "role": "sync_standby"]), 1)
        XCTAssertEqual(text.value("meshd_backend_patroni_role", ["balancer": "pg", "node": "db3", "role": "replica"]), 1)
        XCTAssertEqual(text.samples("meshd_backend_patroni_role").count, 3, "one role per node with Patroni; none for db4 or reports")
        XCTAssertEqual(text.value("meshd_backend_patroni_running", ["balancer": "pg", "node": "db1"]), 1)
        XCTAssertEqual(text.value("meshd_backend_patroni_running", ["balancer": "pg", "node": "db3"]), 0)
        XCTAssertEqual(text.samples("meshd_backend_patroni_running").count, 3)
    }
}
