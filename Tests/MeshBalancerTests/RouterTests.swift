import Foundation
import MeshBalancer
import MeshConfig
import MeshTestSupport
import XCTest

/// Issue 5's routing rules, one table row per rule.
final class RouterTests: XCTestCase {
    static let utc = TimeZone(identifier: "UTC")!
    /// 2024-01-02 12:01:03 UTC.
    static let noon = Date(timeIntervalSince1970: 1_704_196_863)

    static func primary(_ node: String, timeline: UInt32 = 1) -> BackendState {
        BackendState(
            service: "postgres",
            node: node,
            availability: .up(.init(role: .primary, timeline: timeline, lsn: WALPosition(0x3000060)))
        )
    }

    static func standby(_ node: String, lag: Duration? = .zero, lsn: UInt64 = 0x3000000, paused: Bool = false) -> BackendState {
        BackendState(
            service: "postgres",
            node: node,
            availability: .up(.init(role: .standby, timeline: 1, lsn: WALPosition(lsn), replayLag: lag, replayPaused: paused))
        )
    }

    static func down(_ node: String) -> BackendState {
        BackendState(service: "postgres", node: node, availability: .down(error: "connection refused", since: noon))
    }

    static func unknown(_ node: String, last: Date? = nil) -> BackendState {
        BackendState(service: "postgres", node: node, availability: .unknown(lastReport: last))
    }

    /// `backend` with what its Patroni said in the same report.
    static func patroni(_ backend: BackendState, _ role: PatroniState.Role, _ postgres: String) -> BackendState {
        var backend = backend
        backend.patroni = .answered(PatroniState(role: role, postgres: postgres, leader: "db1"))
        return backend
    }

    struct Row {
        var name: String
        var listener: ListenerKind
        var fallback: ReadFallback = .primary
        var backends: [BackendState]
        var connections: [String: Int] = [:]
        var expected: Expected
    }

    enum Expected {
        case node(String)
        case refused(String)
    }

    static let rows: [Row] = [
        Row(name: "rw goes to the primary", listener: .rw, backends: [standby("db2"), primary("db1")], expected: .node("db1")),
        Row(
            name: "rw with no primary names every node",
            listener: .rw,
            backends: [down("db1"), standby("db2")],
            expected: .refused(#"tunnelmesh: no primary available for "pg" (db1: down since 12:01:03, db2: standby)"#)
        ),
        Row(
            name: "higher timeline wins",
            listener: .rw,
            backends: [primary("db1", timeline: 3), primary("db2", timeline: 4)],
            expected: .node("db2")
        ),
        Row(
            name: "lower timeline never chosen whatever the order",
            listener: .rw,
            backends: [primary("db2", timeline: 5), primary("db1", timeline: 2), standby("db3")],
            expected: .node("db2")
        ),
        Row(
            name: "split brain on equal timelines",
            listener: .rw,
            backends: [primary("db1", timeline: 3), primary("db2", timeline: 3)],
            expected: .refused(
                #"tunnelmesh: no primary available for "pg" (db1: primary on timeline 3, db2: primary on timeline 3: split brain)"#
            )
        ),
        Row(
            name: "split brain names only the contenders",
            listener: .rw,
            backends: [primary("db1", timeline: 3), standby("db3"), primary("db2", timeline: 3), primary("db4", timeline: 2)],
            expected: .refused(
                #"tunnelmesh: no primary available for "pg" (db1: primary on timeline 3, db2: primary on timeline 3: split brain)"#
            )
        ),
        Row(
            name: "split brain on the highest timeline only",
            listener: .rw,
            backends: [primary("db1", timeline: 2), primary("db2", timeline: 2), primary("db3", timeline: 3)],
            expected: .node("db3")
        ),
        Row(
            name: "unknown nodes are not routable",
            listener: .rw,
            backends: [unknown("db1", last: noon), unknown("db2")],
            expected: .refused(#"tunnelmesh: no primary available for "pg" (db1: no report since 12:01:03, db2: no report yet)"#)
        ),
        Row(
            name: "ro: fewest connections",
            listener: .ro,
            backends: [primary("db1"), standby("db2"), standby("db3")],
            connections: ["db1": 0, "db2": 3, "db3": 1],
            expected: .node("db3")
        ),
        Row(
            name: "ro: paused standby skipped",
            listener: .ro,
            backends: [primary("db1"), standby("db2", paused: true), standby("db3")],
            connections: ["db3": 9],
            expected: .node("db3")
        ),
        Row(
            name: "ro: lagging standby skipped",
            listener: .ro,
            backends: [primary("db1"), standby("db2", lag: .milliseconds(10_001)), standby("db3")],
            connections: ["db3": 9],
            expected: .node("db3")
        ),
        Row(
            name: "ro: lag exactly max_lag qualifies",
            listener: .ro,
            fallback: .none,
            backends: [standby("db2", lag: .seconds(10))],
            expected: .node("db2")
        ),
        Row(
            name: "ro: unknown lag skipped",
            listener: .ro,
            backends: [primary("db1"), standby("db2", lag: nil), standby("db3")],
            connections: ["db3": 9],
            expected: .node("db3")
        ),
        Row(
            name: "ro: down and unknown standbys skipped",
            listener: .ro,
            backends: [down("db2"), unknown("db3"), standby("db4")],
            connections: ["db4": 5],
            expected: .node("db4")
        ),
        Row(
            name: "ro: a qualifying standby beats an idle primary",
            listener: .ro,
            backends: [primary("db1"), standby("db2")],
            connections: ["db2": 50],
            expected: .node("db2")
        ),
        Row(
            name: "ro fallback primary",
            listener: .ro,
            fallback: .primary,
            backends: [primary("db1"), standby("db2", paused: true), down("db3")],
            expected: .node("db1")
        ),
        Row(
            name: "ro fallback none refuses with reasons",
            listener: .ro,
            fallback: .none,
            backends: [
                primary("db1", timeline: 2), standby("db2", lag: .milliseconds(14_200)), standby("db3", paused: true),
                standby("db4", lag: nil),
            ],
            expected: .refused(
                #"tunnelmesh: no standby available for "pg" (db1: primary on timeline 2, db2: standby, 14.2s behind (max_lag 10s), db3: standby, replay paused, db4: standby, lag unknown)"#
            )
        ),
        Row(
            name: "ro fallback primary without a primary",
            listener: .ro,
            fallback: .primary,
            backends: [down("db1"), standby("db2", paused: true)],
            expected: .refused(
                #"tunnelmesh: no standby or primary available for "pg" (db1: down since 12:01:03, db2: standby, replay paused)"#
            )
        ),
        Row(
            name: "ro without a primary: the standby with the most WAL, whatever its lag",
            listener: .ro,
            fallback: .none,
            backends: [
                down("db1"), standby("db2", lag: .seconds(25), lsn: 0x3000000), standby("db3", lag: .seconds(26), lsn: 0x2FFFF00),
                standby("db4", lag: .seconds(20), lsn: 0x3000000, paused: true),
            ],
            expected: .node("db2")
        ),
        Row(
            name: "ro with a primary: lag counts",
            listener: .ro,
            fallback: .none,
            backends: [primary("db1"), standby("db2", lag: .seconds(25))],
            expected: .refused(
                #"tunnelmesh: no standby available for "pg" (db1: primary on timeline 1, db2: standby, 25.0s behind (max_lag 10s))"#
            )
        ),
        Row(
            name: "ro in a split brain: lag counts",
            listener: .ro,
            fallback: .none,
            backends: [primary("db1", timeline: 3), primary("db2", timeline: 3), standby("db3", lag: .seconds(25))],
            expected: .refused(
                #"tunnelmesh: no standby available for "pg" (db1: primary on timeline 3, split brain, db2: primary on timeline 3, split brain, db3: standby, 25.0s behind (max_lag 10s))"#
            )
        ),
        Row(
            name: "ro fallback primary refused in a split brain",
            listener: .ro,
            fallback: .primary,
            backends: [primary("db1", timeline: 3), primary("db2", timeline: 3)],
            expected: .refused(
                #"tunnelmesh: no standby or primary available for "pg" (db1: primary on timeline 3, split brain, db2: primary on timeline 3, split brain)"#
            )
        ),
        // Patroni (issue 13): routing follows PostgreSQL's reports, but never to a node whose
        // Patroni says its PostgreSQL is not running.
        Row(
            name: "rw: Patroni leader running is the primary",
            listener: .rw,
            backends: [patroni(primary("db1"), .leader, "running"), patroni(standby("db2"), .replica, "running")],
            expected: .node("db1")
        ),
        Row(
            name: "rw: a primary Patroni reports stopped is not chosen",
            listener: .rw,
            backends: [patroni(primary("db1"), .leader, "stopped"), patroni(standby("db2"), .replica, "running")],
            expected: .refused(
                #"tunnelmesh: no primary available for "pg" (db1: primary on timeline 1, PostgreSQL stopped per Patroni, db2: standby)"#
            )
        ),
        Row(
            name: "rw: a stopped newest primary does not hand writes to an older one",
            listener: .rw,
            backends: [
                patroni(primary("db1", timeline: 3), .replica, "stopping"), patroni(primary("db2", timeline: 2), .leader, "running"),
            ],
            expected: .refused(
                #"tunnelmesh: no primary available for "pg" (db1: primary on timeline 3, PostgreSQL stopping per Patroni, db2: primary on timeline 2)"#
            )
        ),
        Row(
            name: "rw: the timeline rule still refuses a stale primary Patroni calls leader",
            listener: .rw,
            backends: [
                patroni(primary("db1", timeline: 2), .leader, "running"), patroni(primary("db2", timeline: 3), .replica, "running"),
            ],
            expected: .node("db2")
        ),
        Row(
            name: "rw: Patroni unanswered or its own unknown leaves PostgreSQL's report in charge",
            listener: .rw,
            backends: [
                {
                    var db1 = primary("db1")
                    db1.patroni = .unanswered(error: "Connection refused")
                    return db1
                }(),
                patroni(standby("db2"), .replica, "unknown"),
            ],
            expected: .node("db1")
        ),
        Row(
            name: "ro: a standby Patroni reports crashed is skipped",
            listener: .ro,
            backends: [primary("db1"), patroni(standby("db2"), .syncStandby, "crashed"), patroni(standby("db3"), .replica, "running")],
            connections: ["db3": 9],
            expected: .node("db3")
        ),
        Row(
            name: "ro fallback none names the stopped standby",
            listener: .ro,
            fallback: .none,
            backends: [patroni(standby("db2"), .replica, "stopped")],
            expected: .refused(
                #"tunnelmesh: no standby available for "pg" (db2: standby, PostgreSQL stopped per Patroni)"#
            )
        ),
        Row(
            name: "nothing declared",
            listener: .rw,
            backends: [],
            expected: .refused(#"tunnelmesh: no primary available for "pg" ()"#)
        ),
    ]

    func testRules() {
        for row in Self.rows {
            let router = Router(balancer: "pg", maxLag: .seconds(10), roFallback: row.fallback, timeZone: Self.utc)
            var random = SplitMix64(seed: 7)
            let result = router.choose(row.listener, backends: row.backends, connections: row.connections, using: &random)
            switch (result, row.expected) {
            case (.success(let node), .node(let expected)):
                XCTAssertEqual(node, expected, row.name)
            case (.failure(let error), .refused(let expected)):
                XCTAssertEqual(error.message, expected, row.name)
                XCTAssertEqual(error.code, .cannotConnectNow, row.name)
                XCTAssertEqual(error.severity, .fatal, row.name)
            default:
                XCTFail("\(row.name): got \(result), expected \(row.expected)")
            }
        }
    }

    func testRouterTakesItsSettingsFromTheBalancer() {
        let settings = BalancerSettings(name: "reports", service: "postgres", on: [:], maxLag: .seconds(2), roFallback: .none)
        let router = Router(settings: settings)
        XCTAssertEqual(router.balancer, "reports")
        XCTAssertEqual(router.maxLag, .seconds(2))
        XCTAssertEqual(router.roFallback, .none)
        let backends = [Self.primary("db1"), Self.standby("db2", lag: .seconds(3))]
        guard case .failure(let error) = router.choose(.ro, backends: backends, connections: [:]) else {
            return XCTFail("a standby 3s behind was used with max_lag 2s")
        }
        XCTAssertTrue(error.message.hasPrefix(#"tunnelmesh: no standby available for "reports""#), error.message)
    }

    /// 1,000 short read connections over two equal standbys: ties are broken at random, so each gets
    /// 500 ± 20%.
    func testThousandReadsSplitEvenlyAtRandom() {
        let router = Router(balancer: "pg", maxLag: .seconds(10), roFallback: .primary)
        let backends = [Self.primary("db1"), Self.standby("db2"), Self.standby("db3")]
        var picks: [String: Int] = [:]
        for _ in 0..<1_000 {
            guard case .success(let node) = router.choose(.ro, backends: backends, connections: [:]) else {
                return XCTFail("refused")
            }
            picks[node, default: 0] += 1
        }
        XCTAssertEqual(Set(picks.keys), ["db2", "db3"])
        for node in ["db2", "db3"] {
            XCTAssertTrue((400...600).contains(picks[node] ?? 0), "\(node) got \(picks[node] ?? 0) of 1,000: \(picks)")
        }
    }

    /// Held connections, counted: each pick goes to the standby with fewer, so 1,000 split exactly.
    func testHeldConnectionsBalanceThroughTheCounts() {
        let router = Router(balancer: "pg", maxLag: .seconds(10), roFallback: .primary)
        let backends = [Self.primary("db1"), Self.standby("db2"), Self.standby("db3")]
        let counts = ConnectionCounts()
        var leases: [ConnectionCounts.Lease] = []
        for _ in 0..<1_000 {
            let opened = counts.open(balancer: "pg", listener: .ro) { router.choose(.ro, backends: backends, connections: $0) }
            guard case .success(let lease) = opened else { return XCTFail("refused") }
            leases.append(lease)
        }
        XCTAssertEqual(counts.count(balancer: "pg", listener: .ro, node: "db2"), 500)
        XCTAssertEqual(counts.count(balancer: "pg", listener: .ro, node: "db3"), 500)
        // Closing db2's connections sends the next reads there until it catches up.
        for lease in leases where lease.node == "db2" { counts.close(lease) }
        XCTAssertEqual(counts.count(balancer: "pg", listener: .ro, node: "db2"), 0)
        for _ in 0..<10 {
            guard
                case .success(let lease) = counts.open(
                    balancer: "pg",
                    listener: .ro,
                    choosing: { router.choose(.ro, backends: backends, connections: $0) }
                )
            else { return XCTFail("refused") }
            XCTAssertEqual(lease.node, "db2")
        }
    }

    func testCountsArePerBalancerAndListener() {
        let counts = ConnectionCounts()
        let rw = counts.open(balancer: "pg", listener: .rw) { _ in Result<String, ErrorResponse>.success("db1") }
        _ = counts.open(balancer: "pg", listener: .ro) { _ in Result<String, ErrorResponse>.success("db1") }
        _ = counts.open(balancer: "other", listener: .ro) { _ in Result<String, ErrorResponse>.success("db1") }
        var seen: [String: Int] = [:]
        _ = counts.open(balancer: "pg", listener: .ro) { perNode -> Result<String, ErrorResponse> in
            seen = perNode
            return .failure(ErrorResponse(code: .cannotConnectNow, message: "no"))
        }
        XCTAssertEqual(seen, ["db1": 2], "both listeners of this balancer, not the other balancer, not the refused one")
        XCTAssertEqual(counts.count(balancer: "pg", listener: .rw, node: "db1"), 1)
        counts.close(try! rw.get())
        counts.close(try! rw.get())  // a second close must not go negative
        XCTAssertEqual(counts.count(balancer: "pg", listener: .rw, node: "db1"), 0)
        XCTAssertEqual(counts.snapshot().count, 2)
    }
}
