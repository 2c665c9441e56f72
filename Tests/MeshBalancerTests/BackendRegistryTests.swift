import Foundation
import MeshBalancer
import MeshConfig
import NIOCore
import XCTest

/// The registry: latest report per node, expiry after 3 probe intervals, ordering, "down since".
final class BackendRegistryTests: XCTestCase {
    static let start = NIODeadline.uptimeNanoseconds(1_000_000_000_000)
    static let clock = Date(timeIntervalSince1970: 1_704_196_863)

    static func report(
        _ node: String,
        sequence: UInt64,
        run: UInt64 = 1,
        at seconds: Double = 0,
        health: BackendReport.Health? = nil
    ) -> BackendReport {
        BackendReport(
            service: "postgres",
            node: node,
            runID: run,
            sequence: sequence,
            reportedAt: clock + seconds,
            health: health ?? .up(.init(role: .primary, timeline: 1, lsn: WALPosition(UInt64(sequence))))
        )
    }

    func testLatestReportPerNodeAndUnknownWithoutOne() {
        let registry = BackendRegistry(probeIntervals: ["postgres": .seconds(1)])
        XCTAssertTrue(registry.record(Self.report("db1", sequence: 1), receivedAt: Self.start))
        XCTAssertTrue(registry.record(Self.report("db1", sequence: 2), receivedAt: Self.start))
        let states = registry.backends(service: "postgres", nodes: ["db1", "db2"], at: Self.start)
        XCTAssertEqual(states.map(\.node), ["db1", "db2"])
        XCTAssertEqual(states[0].status?.lsn, WALPosition(2))
        XCTAssertEqual(states[0].latest?.sequence, 2)
        XCTAssertEqual(states[1].availability, .unknown(lastReport: nil))
    }

    func testReportOlderThanThreeIntervalsIsUnknown() {
        let registry = BackendRegistry(probeIntervals: ["postgres": .milliseconds(500)])
        registry.record(Self.report("db1", sequence: 1, at: 5), receivedAt: Self.start)
        let atLimit = registry.backends(service: "postgres", nodes: ["db1"], at: Self.start + .milliseconds(1_500))
        XCTAssertNotNil(atLimit[0].status, "exactly 3 intervals old still counts")
        let past = registry.backends(service: "postgres", nodes: ["db1"], at: Self.start + .milliseconds(1_501))
        XCTAssertEqual(past[0].availability, .unknown(lastReport: Self.clock + 5))
        XCTAssertEqual(past[0].age, .milliseconds(1_501))
        XCTAssertEqual(past[0].latest?.sequence, 1, "the stale report stays visible for meshctl")
    }

    func testDefaultIntervalForAServiceWithoutOne() {
        let registry = BackendRegistry(probeIntervals: [:])
        registry.record(Self.report("db1", sequence: 1), receivedAt: Self.start)
        XCTAssertNotNil(registry.backends(service: "postgres", nodes: ["db1"], at: Self.start + .seconds(3))[0].status)
        XCTAssertNil(registry.backends(service: "postgres", nodes: ["db1"], at: Self.start + .milliseconds(3_001))[0].status)
    }

    func testOutOfOrderReportsOfARunAreIgnored() {
        let registry = BackendRegistry(probeIntervals: ["postgres": .seconds(1)])
        XCTAssertTrue(registry.record(Self.report("db1", sequence: 5), receivedAt: Self.start))
        XCTAssertFalse(registry.record(Self.report("db1", sequence: 4), receivedAt: Self.start + .milliseconds(10)))
        XCTAssertFalse(registry.record(Self.report("db1", sequence: 5), receivedAt: Self.start + .milliseconds(10)))
        // A restarted probe starts a new run at 1: taken, not mistaken for an old report.
        XCTAssertTrue(registry.record(Self.report("db1", sequence: 1, run: 2), receivedAt: Self.start + .milliseconds(20)))
        let state = registry.backends(service: "postgres", nodes: ["db1"], at: Self.start + .milliseconds(20))[0]
        XCTAssertEqual(state.latest?.runID, 2)
        XCTAssertEqual(state.age, .zero)
    }

    func testDownSinceIsTheFirstFailureOfARun() {
        let registry = BackendRegistry(probeIntervals: ["postgres": .seconds(1)])
        let failed = BackendReport.Health.down(error: "connection refused")
        registry.record(Self.report("db1", sequence: 1, at: 0), receivedAt: Self.start)
        registry.record(Self.report("db1", sequence: 2, at: 1, health: failed), receivedAt: Self.start)
        registry.record(Self.report("db1", sequence: 3, at: 2, health: .down(error: "timeout")), receivedAt: Self.start)
        XCTAssertEqual(
            registry.backends(service: "postgres", nodes: ["db1"], at: Self.start)[0].availability,
            .down(error: "timeout", since: Self.clock + 1)
        )
        registry.record(Self.report("db1", sequence: 4, at: 3), receivedAt: Self.start)
        registry.record(Self.report("db1", sequence: 5, at: 4, health: failed), receivedAt: Self.start)
        XCTAssertEqual(
            registry.backends(service: "postgres", nodes: ["db1"], at: Self.start)[0].availability,
            .down(error: "connection refused", since: Self.clock + 4)
        )
    }

    func testServicesAreSeparate() {
        let registry = BackendRegistry(probeIntervals: ["postgres": .seconds(1), "analytics": .seconds(1)])
        var other = Self.report("db1", sequence: 9)
        other.service = "analytics"
        registry.record(Self.report("db1", sequence: 1), receivedAt: Self.start)
        registry.record(other, receivedAt: Self.start)
        XCTAssertEqual(registry.backends(service: "postgres", nodes: ["db1"], at: Self.start)[0].latest?.sequence, 1)
        XCTAssertEqual(registry.snapshot(at: Self.start).map { "\($0.service)/\($0.node)" }, ["analytics/db1", "postgres/db1"])
    }

    func testIntervalsAndNodesFollowTheConfiguration() throws {
        let registry = try BackendRegistry(config: Self.config(probeInterval: "2s"))
        registry.record(Self.report("db1", sequence: 1), receivedAt: Self.start)
        var stray = Self.report("db9", sequence: 1)
        stray.service = "postgres"
        registry.record(stray, receivedAt: Self.start)
        XCTAssertNotNil(registry.backends(service: "postgres", nodes: ["db1"], at: Self.start + .seconds(6))[0].status)
        try registry.update(config: Self.config(probeInterval: "1s"))
        XCTAssertNil(registry.backends(service: "postgres", nodes: ["db1"], at: Self.start + .seconds(6))[0].status)
        XCTAssertEqual(registry.snapshot(at: Self.start).map(\.node), ["db1"], "db9 is not in the service's \"on\"")
    }

    func testConcurrentWritersKeepTheLatest() {
        let registry = BackendRegistry(probeIntervals: ["postgres": .seconds(1)])
        DispatchQueue.concurrentPerform(iterations: 2_000) { index in
            registry.record(Self.report("db\(index % 2)", sequence: UInt64(index)), receivedAt: Self.start)
            _ = registry.snapshot(at: Self.start)
        }
        let sequences = registry.backends(service: "postgres", nodes: ["db0", "db1"], at: Self.start).map { $0.latest?.sequence }
        XCTAssertEqual(sequences, [1_998, 1_999])
    }

    func testReportJSONRoundTrip() throws {
        let reports = [
            BackendReport(
                service: "postgres",
                node: "db2",
                runID: .max,
                sequence: 17,
                reportedAt: Date(timeIntervalSince1970: 1_704_196_863.25),
                health: .up(
                    .init(
                        role: .standby,
                        timeline: 3,
                        lsn: WALPosition("16/B374D848")!,
                        replayLag: .milliseconds(1_250),
                        replayPaused: true
                    )
                )
            ),
            BackendReport(
                service: "postgres",
                node: "db1",
                runID: 1,
                sequence: 1,
                reportedAt: Date(timeIntervalSince1970: 0),
                health: .down(error: "connection refused (127.0.0.1:55432)")
            ),
        ]
        for report in reports {
            let data = try JSONEncoder().encode(report)
            XCTAssertEqual(try JSONDecoder().decode(BackendReport.self, from: data), report, String(decoding: data, as: UTF8.self))
        }
        let json = String(decoding: try JSONEncoder().encode(reports[0]), as: UTF8.self)
        XCTAssertTrue(json.contains(#""lsn":"16\/B374D848""#) || json.contains(#""lsn":"16/B374D848""#), json)
        XCTAssertTrue(json.contains(#""replay_lag_seconds":1.25"#), json)
        XCTAssertThrowsError(
            try JSONDecoder().decode(BackendReport.self, from: Data(json.replacingOccurrences(of: #""up""#, with: #""sideways""#).utf8))
        )
    }

    func testWALPositionText() {
        XCTAssertEqual(WALPosition("0/3000060")?.value, 0x3000060)
        XCTAssertEqual(WALPosition("16/B374D848")?.description, "16/B374D848")
        XCTAssertEqual(WALPosition("FFFFFFFF/FFFFFFFF")?.value, .max)
        for bad in ["", "0/", "/1", "1/2/3", "G/0", "123456789/0", "0x1/2"] {
            XCTAssertNil(WALPosition(bad), bad)
        }
        XCTAssertLessThan(WALPosition("0/FFFFFFFF")!, WALPosition("1/0")!)
    }

    static func config(probeInterval: String) throws -> MeshConfiguration {
        let json = """
            {
              "mesh": "demo",
              "tls": { "ca": "pki/ca.pem", "cert": "pki/{node}.pem", "key": "pki/{node}.key" },
              "nodes": {
                "db1":  { "address": "127.0.1.1:7443" },
                "app1": { "address": "127.0.1.3:7443" }
              },
              "services": {
                "postgres": {
                  "on": { "db1": "127.0.0.1:55432" },
                  "allow": ["app1"],
                  "postgres": { "probe_interval": "\(probeInterval)" }
                }
              }
            }
            """
        return try MeshConfiguration.parse(Data(json.utf8), file: "mesh.json", directory: "/tmp")
    }
}
