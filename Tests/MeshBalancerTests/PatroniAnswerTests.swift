import Foundation
import MeshConfig
import XCTest

@testable import MeshBalancer

/// Patroni's REST API answers read into what a report carries. The answers in `PatroniAnswers/` are
/// real ones of Patroni 3.0.2 (Debian 12) with etcd 3.4, captured with curl from a throwaway
/// two-member cluster on 127.0.0.1: db1's API on 127.0.0.1:18008, db2's on 127.0.0.1:18009.
/// `NAME-patroni.json` is `GET /patroni` of the member, `NAME-cluster.json` `GET /cluster` as it
/// answered at the same moment. `/patroni` says `master` where `/cluster` says `leader`, and
/// names no member, so the member is found by its `api_url`.
final class PatroniAnswerTests: XCTestCase {
    static let answers = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("PatroniAnswers")
    static let db1 = Endpoint.tcp(host: "127.0.0.1", port: 18008)
    static let db2 = Endpoint.tcp(host: "127.0.0.1", port: 18009)

    static func answer(_ name: String) throws -> Data {
        try Data(contentsOf: self.answers.appendingPathComponent(name + ".json"))
    }

    func state(_ node: String, _ cluster: String?, api: Endpoint = db1, meshNode: String = "db1") throws -> PatroniState {
        try PatroniAnswer.state(
            node: Self.answer(node),
            cluster: try cluster.map(Self.answer),
            api: api,
            meshNode: meshNode
        )
    }

    func testLeaderRunning() throws {
        XCTAssertEqual(
            try self.state("leader-patroni", "leader-cluster"),
            PatroniState(role: .leader, postgres: "running", leader: "db1", paused: false)
        )
    }

    func testSyncStandbyAndPlainReplica() throws {
        XCTAssertEqual(
            try self.state("sync-standby-patroni", "sync-standby-cluster", api: Self.db2, meshNode: "db2"),
            PatroniState(role: .syncStandby, postgres: "running", leader: "db1")
        )
        XCTAssertEqual(
            try self.state("leader-sync-patroni", "sync-standby-cluster"),
            PatroniState(role: .leader, postgres: "running", leader: "db1")
        )
        XCTAssertEqual(
            try self.state("replica-patroni", "replica-cluster", api: Self.db2, meshNode: "db2"),
            PatroniState(role: .replica, postgres: "running", leader: "db1")
        )
    }

    func testPausedAndStopped() throws {
        XCTAssertEqual(
            try self.state("paused-patroni", "paused-cluster"),
            PatroniState(role: .leader, postgres: "running", leader: "db1", paused: true)
        )
        // Stopped, Patroni gave up the leader key: no DCS leader, and db1 is a stopped replica.
        let stopped = try self.state("stopped-patroni", "stopped-cluster")
        XCTAssertEqual(stopped, PatroniState(role: .replica, postgres: "stopped", leader: nil, paused: true))
        XCTAssertTrue(PatroniStatus.answered(stopped).saysPostgresNotRunning)
        XCTAssertEqual(
            try self.state("replica-stopped-patroni", "replica-stopped-cluster", api: Self.db2, meshNode: "db2"),
            PatroniState(role: .replica, postgres: "stopped", leader: "db1", paused: true)
        )
    }

    func testMemberFoundByNameWhenTheAPIAddressDiffers() throws {
        let other = Endpoint.tcp(host: "127.0.1.2", port: 8008)
        XCTAssertEqual(try self.state("replica-patroni", "replica-cluster", api: other, meshNode: "db2").role, .replica)
        XCTAssertEqual(try self.state("replica-patroni", "replica-cluster", api: other, meshNode: "db9").role, .unknown)
    }

    func testClusterUnansweredKeepsPatronisOwnState() throws {
        XCTAssertEqual(try self.state("stopped-patroni", nil), PatroniState(role: .unknown, postgres: "stopped", leader: nil, paused: true))
        let garbled = try PatroniAnswer.state(
            node: Self.answer("leader-patroni"),
            cluster: Data("<html>".utf8),
            api: Self.db1,
            meshNode: "db1"
        )
        XCTAssertEqual(garbled, PatroniState(role: .unknown, postgres: "running"))
    }

    func testUnreadableNodeAnswerThrows() {
        XCTAssertThrowsError(try PatroniAnswer.state(node: Data("{}".utf8), cluster: nil, api: Self.db1, meshNode: "db1"))
        XCTAssertThrowsError(try PatroniAnswer.state(node: Data("nope".utf8), cluster: nil, api: Self.db1, meshNode: "db1"))
    }

    func testWhichStatesKeepRoutingAway() {
        func notRunning(_ state: String) -> Bool {
            PatroniStatus.answered(PatroniState(role: .replica, postgres: state)).saysPostgresNotRunning
        }
        for state in ["stopped", "stopping", "starting", "restarting", "crashed", "start failed", "creating replica"] {
            XCTAssertTrue(notRunning(state), state)
        }
        XCTAssertFalse(notRunning("running"))
        XCTAssertFalse(notRunning("unknown"), "Patroni's status query failed: PostgreSQL's own report decides")
        XCTAssertFalse(PatroniStatus.unanswered(error: "Connection refused").saysPostgresNotRunning)
        XCTAssertEqual(PatroniStatus.unanswered(error: "x").role, .unknown)
    }
}
