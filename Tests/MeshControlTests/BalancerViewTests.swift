import Foundation
import MeshBalancer
import MeshControl
import MeshControlModel
import MeshTestSupport
import NIOCore
import XCTest

/// `BalancerView` over a real registry, connection counts and outcomes: one row per balancer on this
/// node and database node of its service, each state mapped, the JSON of `/v1/backends` exactly,
/// and a reload followed.
final class BalancerViewTests: XCTestCase {
    func testOneRowPerBalancerHereAndDatabaseNode() throws {
        let fixtures = try BalancerFixtures()
        let rows = fixtures.view.backends()
        XCTAssertEqual(rows.map { "\($0.balancer)/\($0.node)" }, ["pg/db1", "pg/db2", "pg/db3", "pg/db4", "reports/db5", "reports/db6"])
        XCTAssertEqual(rows.map(\.state), ["up", "up", "down", "unknown", "unknown", "up"])
        XCTAssertEqual(rows.map(\.healthy), [true, true, false, false, false, true])
        XCTAssertEqual(rows.map(\.role), ["primary", "standby", "unknown", "unknown", "unknown", "standby"])
        XCTAssertEqual(rows.map(\.service), ["postgres", "postgres", "postgres", "postgres", "reporting", "reporting"])
    }

    func testUpRowsCarryTheReportAndTheLiveConnections() throws {
        let fixtures = try BalancerFixtures()
        let rows = fixtures.view.backends()
        let primary = rows[0]
        XCTAssertEqual(primary.timeline, 2)
        XCTAssertEqual(primary.lsn, "3/148")
        XCTAssertNil(primary.lagSeconds, "a primary has no replay lag")
        XCTAssertEqual(primary.replayPaused, false)
        XCTAssertEqual(primary.connectionsRW, 3)
        XCTAssertEqual(primary.connectionsRO, 1, "a read that fell back to the primary")
        XCTAssertEqual(primary.lastReport, BalancerFixtures.now.addingTimeInterval(-0.4))
        XCTAssertEqual(try XCTUnwrap(primary.reportAgeSeconds), 0.4, accuracy: 1e-9)
        XCTAssertNil(primary.lastError)

        let standby = rows[1]
        XCTAssertEqual(standby.lagSeconds, 0.25)
        XCTAssertEqual(standby.connectionsRW, 0)
        XCTAssertEqual(standby.connectionsRO, 2)

        let paused = rows[5]
        XCTAssertEqual(paused.replayPaused, true)
        XCTAssertEqual(paused.lagSeconds, 42.5)
        XCTAssertEqual(paused.lsn, "A0/2000")
        XCTAssertEqual(paused.connectionsRO, 1)

        // A closed connection is no longer counted.
        for lease in fixtures.leases where lease.node == "db2" { fixtures.connections.close(lease) }
        XCTAssertEqual(fixtures.view.backends()[1].connectionsRO, 0)
    }

    func testDownUnknownAndStaleRows() throws {
        let fixtures = try BalancerFixtures()
        let rows = fixtures.view.backends()

        let down = rows[2]
        XCTAssertEqual(down.lastError, "connection to 127.0.0.1:5432 refused: is PostgreSQL running on db3?")
        XCTAssertEqual(down.downSince, BalancerFixtures.now.addingTimeInterval(-5), "the first failure of the run")
        XCTAssertEqual(down.lastReport, BalancerFixtures.now.addingTimeInterval(-0.9))
        XCTAssertNil(down.timeline)
        XCTAssertNil(down.lsn)

        let never = rows[3]
        XCTAssertNil(never.lastReport)
        XCTAssertNil(never.reportAgeSeconds)
        XCTAssertNil(never.lastError)
        XCTAssertEqual(never.connectionsRW + never.connectionsRO, 0)

        // db5's last report said standby, but it is 12 s old: nothing of it is shown as current.
        let stale = rows[4]
        XCTAssertEqual(stale.lastReport, BalancerFixtures.now.addingTimeInterval(-12))
        XCTAssertEqual(try XCTUnwrap(stale.reportAgeSeconds), 12, accuracy: 1e-9)
        XCTAssertNil(stale.timeline)
        XCTAssertNil(stale.lsn)
        XCTAssertNil(stale.lagSeconds)
        XCTAssertNil(stale.replayPaused)

        // The primary's report goes stale too once 3 probe intervals pass without a new one.
        fixtures.clock.withLockedValue { $0 = BalancerFixtures.judgedAt + .milliseconds(2_700) }
        let later = fixtures.view.backends()
        XCTAssertEqual(later[0].state, "unknown")
        XCTAssertEqual(later[0].role, "unknown")
        XCTAssertFalse(later[0].healthy)
    }

    func testReloadDropsRemovedBalancersAndNodes() throws {
        let fixtures = try BalancerFixtures()
        fixtures.reload(try BalancerFixtures.reloadedConfig())
        let rows = fixtures.view.backends()
        XCTAssertEqual(rows.map { "\($0.balancer)/\($0.node)" }, ["pg/db1", "pg/db2", "pg/db3"])
        fixtures.reload(try BalancerFixtures.config())
        XCTAssertEqual(fixtures.view.backends().count, 6, "and come back with the config")
    }

    func testANodeWithoutBalancersHasNoRows() throws {
        let fixtures = try BalancerFixtures()
        let config = try BalancerFixtures.config()
        func view(on node: String) -> BalancerView {
            BalancerView(
                node: node,
                config: { config },
                registry: fixtures.registry,
                connections: fixtures.connections,
                outcomes: fixtures.outcomes
            )
        }
        XCTAssertEqual(view(on: "db2").backends(), [])
        let db1 = view(on: "db1")
        XCTAssertEqual(db1.backends().map(\.balancer), ["elsewhere", "elsewhere", "elsewhere", "elsewhere"])
    }

    func testJSON() throws {
        let fixtures = try BalancerFixtures()
        let rows = fixtures.view.backends()
        let text = try ControlJSON.text([rows[1], rows[2]])
        XCTAssertEqual(
            text,
            """
            [
              {
                "balancer" : "pg",
                "connections_ro" : 2,
                "connections_rw" : 0,
                "down_since" : null,
                "healthy" : true,
                "lag_seconds" : 0.25,
                "last_error" : null,
                "last_report" : "2026-02-25T06:13:19Z",
                "lsn" : "3/60",
                "node" : "db2",
                "patroni_error" : null,
                "patroni_leader" : null,
                "patroni_paused" : null,
                "patroni_role" : null,
                "patroni_state" : null,
                "replay_paused" : false,
                "report_age_seconds" : 0.2,
                "role" : "standby",
                "service" : "postgres",
                "state" : "up",
                "timeline" : 2
              },
              {
                "balancer" : "pg",
                "connections_ro" : 0,
                "connections_rw" : 0,
                "down_since" : "2026-02-25T06:13:15Z",
                "healthy" : false,
                "lag_seconds" : null,
                "last_error" : "connection to 127.0.0.1:5432 refused: is PostgreSQL running on db3?",
                "last_report" : "2026-02-25T06:13:19Z",
                "lsn" : null,
                "node" : "db3",
                "patroni_error" : null,
                "patroni_leader" : null,
                "patroni_paused" : null,
                "patroni_role" : null,
                "patroni_state" : null,
                "replay_paused" : null,
                "report_age_seconds" : 0.9,
                "role" : "unknown",
                "service" : "postgres",
                "state" : "down",
                "timeline" : null
              }
            ]

            """
        )
        // Whole seconds in the dates: ISO 8601 as the rest of the API writes it.
        let decoded = try ControlJSON.decoder().decode([BackendInfo].self, from: Data(text.utf8))
        XCTAssertEqual(decoded.map(\.node), ["db2", "db3"])
        XCTAssertEqual(decoded[1].state, "down")
        XCTAssertEqual(decoded[0].connectionsRO, 2)
        XCTAssertEqual(decoded[0].lsn, "3/60")
    }
}
