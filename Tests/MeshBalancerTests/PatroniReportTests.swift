import Foundation
import MeshBalancer
import NIOCore
import XCTest

/// Patroni's part of a backend report on the wire between meshd processes: present or absent,
/// read by a meshd of this build whatever the sender was.
final class PatroniReportTests: XCTestCase {
    static func report(patroni: PatroniStatus?) -> BackendReport {
        BackendReport(
            service: "postgres",
            node: "db1",
            runID: 9,
            sequence: 4,
            reportedAt: Date(timeIntervalSince1970: 1_704_196_863),
            health: .up(.init(role: .primary, timeline: 2, lsn: WALPosition(0x3000060))),
            patroni: patroni
        )
    }

    func testRoundTripWithAndWithoutPatroni() throws {
        for patroni: PatroniStatus? in [
            nil,
            .answered(PatroniState(role: .leader, postgres: "running", leader: "db1")),
            .answered(PatroniState(role: .standbyLeader, postgres: "running", leader: "db1", paused: true)),
            .answered(PatroniState(role: .replica, postgres: "stopped")),
            .unanswered(error: "Patroni at 127.0.0.1:8008: Connection refused"),
        ] {
            let report = Self.report(patroni: patroni)
            let data = try JSONEncoder().encode(report)
            XCTAssertEqual(try JSONDecoder().decode(BackendReport.self, from: data), report, String(decoding: data, as: UTF8.self))
        }
    }

    func testWireShape() throws {
        let without = String(decoding: try JSONEncoder().encode(Self.report(patroni: nil)), as: UTF8.self)
        XCTAssertFalse(without.contains("patroni"), "a report without Patroni looks as it always did: \(without)")
        let encoder = JSONEncoder()
        encoder.outputFormatting = .sortedKeys
        let with = String(
            decoding: try encoder.encode(
                Self.report(patroni: .answered(PatroniState(role: .syncStandby, postgres: "running", leader: "db1")))
            ),
            as: UTF8.self
        )
        XCTAssertTrue(with.contains(#""patroni":{"leader":"db1","paused":false,"role":"sync_standby","state":"running"}"#), with)
    }

    /// What a meshd without Patroni support sends: no `patroni` key at all.
    func testReportOfAnOlderMeshdDecodes() throws {
        let json = #"""
            {"service":"postgres","node":"db1","run_id":9,"sequence":4,"reported_at":1704196863,"state":"up",
             "role":"primary","timeline":2,"lsn":"0/3000060","replay_paused":false}
            """#
        let report = try JSONDecoder().decode(BackendReport.self, from: Data(json.utf8))
        XCTAssertNil(report.patroni)
        XCTAssertEqual(report, Self.report(patroni: nil))
    }

    /// A newer meshd may name roles or add fields this one does not know; a broken Patroni part
    /// costs only itself, never PostgreSQL's report.
    func testUnknownOrBrokenPatroniPartsAreTolerated() throws {
        func decode(_ patroni: String) throws -> BackendReport {
            let json = """
                {"service":"postgres","node":"db1","run_id":9,"sequence":4,"reported_at":1704196863,"state":"up",
                 "role":"primary","timeline":2,"lsn":"0/3000060","replay_paused":false,"patroni":\(patroni)}
                """
            return try JSONDecoder().decode(BackendReport.self, from: Data(json.utf8))
        }
        XCTAssertEqual(
            try decode(#"{"role":"witness","state":"running","leader":"db3","paused":false,"epoch":7}"#).patroni,
            .answered(PatroniState(role: .unknown, postgres: "running", leader: "db3"))
        )
        let broken = try decode(#"{"role":"leader"}"#)
        XCTAssertEqual(broken.status?.role, .primary)
        guard case .unanswered(let error)? = broken.patroni else { return XCTFail("\(String(describing: broken.patroni))") }
        XCTAssertTrue(error.hasPrefix("unreadable Patroni state in the report"), error)
        XCTAssertEqual(try decode("42").status?.timeline, 2)
    }

    /// Routing and `meshctl backends` see Patroni's part of a fresh report, up or down, and nothing
    /// of a stale one.
    func testRegistryShowsPatroniOfFreshReportsOnly() {
        let registry = BackendRegistry(probeIntervals: ["postgres": .seconds(1)])
        let start = NIODeadline.uptimeNanoseconds(1_000_000_000_000)
        var report = Self.report(patroni: .answered(PatroniState(role: .replica, postgres: "stopped")))
        report.health = .down(error: "Connection refused")
        registry.record(report, receivedAt: start)
        let fresh = registry.backends(service: "postgres", nodes: ["db1"], at: start + .seconds(1))[0]
        XCTAssertEqual(fresh.patroni, report.patroni)
        let stale = registry.backends(service: "postgres", nodes: ["db1"], at: start + .seconds(4))[0]
        XCTAssertNil(stale.patroni)
        XCTAssertEqual(stale.latest?.patroni, report.patroni, "the last report is still there for display")
    }
}
