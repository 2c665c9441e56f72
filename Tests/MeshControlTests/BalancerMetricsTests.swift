import Foundation
import MeshBalancer
import MeshControl
import MeshTestSupport
import MeshTunnel
import NIOCore
import XCTest

/// The balancer series of `/metrics`, read from a `BalancerView` over real registry, counts and
/// outcomes: values and labels, counters that only grow, series gone after a reload, strict
/// Prometheus text throughout. The fixture's clock is fixed, so freshness does not depend on timing.
final class BalancerMetricsTests: XCTestCase {
    /// A tunnel side with no peers, so only the balancer series are in the output.
    private struct NoPeers: MetricsSource {
        func metricsSnapshot() -> MetricsSnapshot { MetricsSnapshot(peers: []) }
    }

    func testBackendSeries() throws {
        let fixtures = try BalancerFixtures()
        let metrics = MeshMetrics(source: NoPeers(), balancers: fixtures.view)
        let text = try PrometheusText(metrics.scrape())

        XCTAssertEqual(text.families["meshd_backend_up"]?.type, "gauge")
        XCTAssertEqual(text.value("meshd_backend_up", ["balancer": "pg", "node": "db1"]), 1)
        XCTAssertEqual(text.value("meshd_backend_up", ["balancer": "pg", "node": "db2"]), 1)
        XCTAssertEqual(text.value("meshd_backend_up", ["balancer": "pg", "node": "db3"]), 0, "down")
        XCTAssertEqual(text.value("meshd_backend_up", ["balancer": "pg", "node": "db4"]), 0, "never reported")
        XCTAssertEqual(text.value("meshd_backend_up", ["balancer": "reports", "node": "db5"]), 0, "stale")
        XCTAssertEqual(text.value("meshd_backend_up", ["balancer": "reports", "node": "db6"]), 1)
        XCTAssertEqual(text.samples("meshd_backend_up").count, 6)
        XCTAssertFalse(text.samples("meshd_backend_up").contains { $0.labels["balancer"] == "elsewhere" }, "not on this node")

        XCTAssertEqual(text.value("meshd_backend_role", ["balancer": "pg", "node": "db1"]), 1)
        XCTAssertEqual(text.value("meshd_backend_role", ["balancer": "pg", "node": "db2"]), 0)
        XCTAssertEqual(text.value("meshd_backend_role", ["balancer": "pg", "node": "db3"]), -1)
        XCTAssertEqual(text.value("meshd_backend_role", ["balancer": "reports", "node": "db5"]), -1)
        XCTAssertTrue(try XCTUnwrap(text.families["meshd_backend_role"]?.help).contains("1 primary, 0 standby, -1"))

        XCTAssertEqual(text.value("meshd_backend_lag_seconds", ["balancer": "pg", "node": "db2"]), 0.25)
        XCTAssertEqual(text.value("meshd_backend_lag_seconds", ["balancer": "reports", "node": "db6"]), 42.5)
        XCTAssertEqual(text.samples("meshd_backend_lag_seconds").count, 2, "only standbys that are up have a known lag")
    }

    func testConnectionSeries() throws {
        let fixtures = try BalancerFixtures()
        let metrics = MeshMetrics(source: NoPeers(), balancers: fixtures.view)
        let text = try PrometheusText(metrics.scrape())

        XCTAssertEqual(text.families["meshd_balancer_connections_active"]?.type, "gauge")
        XCTAssertEqual(text.value("meshd_balancer_connections_active", ["balancer": "pg", "listener": "rw", "node": "db1"]), 3)
        XCTAssertEqual(text.value("meshd_balancer_connections_active", ["balancer": "pg", "listener": "ro", "node": "db1"]), 1)
        XCTAssertEqual(text.value("meshd_balancer_connections_active", ["balancer": "pg", "listener": "ro", "node": "db2"]), 2)
        XCTAssertEqual(text.value("meshd_balancer_connections_active", ["balancer": "pg", "listener": "rw", "node": "db4"]), 0)
        XCTAssertEqual(text.value("meshd_balancer_connections_active", ["balancer": "reports", "listener": "ro", "node": "db6"]), 1)
        // pg: 2 listeners x 4 nodes; reports: its one ro listener x 2 nodes.
        XCTAssertEqual(text.samples("meshd_balancer_connections_active").count, 10)
        XCTAssertNil(text.value("meshd_balancer_connections_active", ["balancer": "reports", "listener": "rw", "node": "db6"]))

        XCTAssertEqual(text.families["meshd_balancer_connections_total"]?.type, "counter")
        let total = "meshd_balancer_connections_total"
        XCTAssertEqual(text.value(total, ["balancer": "pg", "listener": "rw", "node": "db1", "result": "routed"]), 5)
        XCTAssertEqual(text.value(total, ["balancer": "pg", "listener": "rw", "node": "db1", "result": "failed"]), 1)
        XCTAssertEqual(text.value(total, ["balancer": "pg", "listener": "ro", "node": "none", "result": "refused"]), 2)
        XCTAssertEqual(text.value(total, ["balancer": "reports", "listener": "ro", "node": "db6", "result": "routed"]), 4)
        XCTAssertEqual(text.samples(total).count, 4)
    }

    func testCountersOnlyGrowAndGaugesFollow() throws {
        var fixtures = try BalancerFixtures()
        let metrics = MeshMetrics(source: NoPeers(), balancers: fixtures.view)
        let total = "meshd_balancer_connections_total"
        let routed = ["balancer": "pg", "listener": "rw", "node": "db1", "result": "routed"]
        XCTAssertEqual(try PrometheusText(metrics.scrape()).value(total, routed), 5)
        XCTAssertEqual(try PrometheusText(metrics.scrape()).value(total, routed), 5, "a second scrape counts nothing twice")

        fixtures.count("pg", .rw, "db1", .routed, times: 3)
        fixtures.count("pg", .ro, "db2", .routed, times: 1)
        fixtures.open("pg", .ro, "db2")
        for lease in fixtures.leases where lease.listener == .rw { fixtures.connections.close(lease) }
        let later = try PrometheusText(metrics.scrape())
        XCTAssertEqual(later.value(total, routed), 8)
        XCTAssertEqual(later.value(total, ["balancer": "pg", "listener": "ro", "node": "db2", "result": "routed"]), 1)
        XCTAssertEqual(later.value("meshd_balancer_connections_active", ["balancer": "pg", "listener": "rw", "node": "db1"]), 0)
        XCTAssertEqual(later.value("meshd_balancer_connections_active", ["balancer": "pg", "listener": "ro", "node": "db2"]), 3)

        // db1 reports a failure: up and role follow at the next scrape.
        fixtures.record("postgres", "db1", sequence: 2, secondsAgo: 0.1, .down(error: "the database system is shutting down"))
        let failed = try PrometheusText(metrics.scrape())
        XCTAssertEqual(failed.value("meshd_backend_up", ["balancer": "pg", "node": "db1"]), 0)
        XCTAssertEqual(failed.value("meshd_backend_role", ["balancer": "pg", "node": "db1"]), -1)
    }

    func testReloadRemovesSeriesOfRemovedBalancersAndNodes() throws {
        let fixtures = try BalancerFixtures()
        let metrics = MeshMetrics(source: NoPeers(), balancers: fixtures.view)
        let before = try PrometheusText(metrics.scrape())
        XCTAssertNotNil(before.value("meshd_backend_up", ["balancer": "pg", "node": "db4"]))

        fixtures.reload(try BalancerFixtures.reloadedConfig())
        let after = try PrometheusText(metrics.scrape())
        for family in after.families.values {
            XCTAssertFalse(family.samples.contains { $0.labels["balancer"] == "reports" }, "\(family.name) still has reports")
        }
        XCTAssertNil(after.value("meshd_backend_up", ["balancer": "pg", "node": "db4"]))
        XCTAssertNil(after.value("meshd_balancer_connections_active", ["balancer": "pg", "listener": "rw", "node": "db4"]))
        XCTAssertEqual(after.value("meshd_backend_up", ["balancer": "pg", "node": "db1"]), 1)
        XCTAssertEqual(
            after.value("meshd_balancer_connections_total", ["balancer": "pg", "listener": "rw", "node": "db1", "result": "routed"]),
            5
        )

        // Back in the config: its counters resume from the balancer's own count.
        fixtures.reload(try BalancerFixtures.config())
        let back = try PrometheusText(metrics.scrape())
        XCTAssertEqual(
            back.value("meshd_balancer_connections_total", ["balancer": "reports", "listener": "ro", "node": "db6", "result": "routed"]),
            4
        )
    }

    func testPeerSeriesStayAlongside() throws {
        let fixtures = try BalancerFixtures()
        let peer = PeerStatus(name: "db1", address: "127.0.1.1:7443", dialer: true, state: .up, since: Date())
        struct OnePeer: MetricsSource {
            var peer: PeerStatus
            func metricsSnapshot() -> MetricsSnapshot { MetricsSnapshot(peers: [self.peer]) }
        }
        let text = try PrometheusText(MeshMetrics(source: OnePeer(peer: peer), balancers: fixtures.view).scrape())
        XCTAssertEqual(text.value("meshd_peer_up", ["peer": "db1"]), 1)
        XCTAssertEqual(text.value("meshd_backend_up", ["balancer": "pg", "node": "db1"]), 1)
        XCTAssertNil(
            try PrometheusText(MeshMetrics(source: OnePeer(peer: peer)).scrape()).families["meshd_backend_up"],
            "no balancer view, no balancer series"
        )
    }
}
