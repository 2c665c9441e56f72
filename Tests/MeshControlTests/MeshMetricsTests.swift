import Foundation
import MeshControl
import MeshTestSupport
import MeshTunnel
import NIOConcurrencyHelpers
import XCTest

/// `MeshMetrics` over a source whose numbers the test sets: counters follow the source by delta
/// and stay monotonic when the source starts over; series of a removed peer disappear; the output
/// is strict Prometheus text every time.
final class MeshMetricsTests: XCTestCase {
    /// A metrics source that returns whatever snapshot the test last set.
    private final class SetSource: MetricsSource {
        let snapshot = NIOLockedValueBox(MetricsSnapshot(peers: []))
        func metricsSnapshot() -> MetricsSnapshot { self.snapshot.withLockedValue { $0 } }
    }

    private static func peer(_ name: String, up: Bool, sent: UInt64, reconnects: UInt64 = 0) -> PeerStatus {
        var status = PeerStatus(name: name, address: "127.0.1.1:7443", dialer: true, state: up ? .up : .down, since: Date())
        status.rttSeconds = 0.000_25
        status.bytesSent = sent
        status.bytesReceived = sent / 2
        status.reconnects = reconnects
        status.streamsActive = up ? 2 : 0
        return status
    }

    func testCountersFollowTheSourceAndStayMonotonic() throws {
        let source = SetSource()
        let metrics = MeshMetrics(source: source)
        source.snapshot.withLockedValue {
            $0 = MetricsSnapshot(
                peers: [Self.peer("db1", up: true, sent: 1000), Self.peer("db2", up: false, sent: 10, reconnects: 3)],
                handshakeFailures: [.init(peer: "unknown", reason: "untrusted", count: 2)],
                streams: [.init(peer: "db1", service: "postgres", result: "opened", count: 5)]
            )
        }
        let first = try PrometheusText(metrics.scrape())
        XCTAssertEqual(first.value("meshd_peer_up", ["peer": "db1"]), 1)
        XCTAssertEqual(first.value("meshd_peer_up", ["peer": "db2"]), 0)
        XCTAssertEqual(first.value("meshd_peer_rtt_seconds", ["peer": "db1"]), 0.000_25)
        XCTAssertNil(first.value("meshd_peer_rtt_seconds", ["peer": "db2"]), "a down peer's last RTT is not reported")
        XCTAssertEqual(first.value("meshd_streams_active", ["peer": "db1"]), 2)
        XCTAssertEqual(first.value("meshd_bytes_total", ["peer": "db1", "direction": "sent"]), 1000)
        XCTAssertEqual(first.value("meshd_bytes_total", ["peer": "db1", "direction": "received"]), 500)
        XCTAssertEqual(first.value("meshd_tunnel_reconnects_total", ["peer": "db2"]), 3)
        XCTAssertEqual(first.value("meshd_handshake_failures_total", ["peer": "unknown", "reason": "untrusted"]), 2)
        XCTAssertEqual(first.value("meshd_streams_total", ["peer": "db1", "service": "postgres", "result": "opened"]), 5)

        // The same numbers again: nothing counted twice.
        let again = try PrometheusText(metrics.scrape())
        XCTAssertEqual(again.value("meshd_bytes_total", ["peer": "db1", "direction": "sent"]), 1000)
        XCTAssertEqual(again.value("meshd_streams_total", ["peer": "db1", "service": "postgres", "result": "opened"]), 5)

        // db1 moved on; db2's counters started over (say its link was replaced): 10 -> 4 means 4 new bytes.
        source.snapshot.withLockedValue {
            $0.peers = [Self.peer("db1", up: true, sent: 1500), Self.peer("db2", up: true, sent: 4, reconnects: 0)]
            $0.streams = [.init(peer: "db1", service: "postgres", result: "opened", count: 7)]
            $0.handshakeFailures = []
        }
        let later = try PrometheusText(metrics.scrape())
        XCTAssertEqual(later.value("meshd_bytes_total", ["peer": "db1", "direction": "sent"]), 1500)
        XCTAssertEqual(later.value("meshd_bytes_total", ["peer": "db2", "direction": "sent"]), 14, "never below the last scrape")
        XCTAssertEqual(later.value("meshd_tunnel_reconnects_total", ["peer": "db2"]), 3)
        XCTAssertEqual(later.value("meshd_streams_total", ["peer": "db1", "service": "postgres", "result": "opened"]), 7)
        XCTAssertNil(
            later.value("meshd_handshake_failures_total", ["peer": "unknown", "reason": "untrusted"]),
            "a series the source no longer has is dropped"
        )

        // db2 removed from the mesh: every db2 series goes.
        source.snapshot.withLockedValue { $0.peers = [Self.peer("db1", up: true, sent: 1500)] }
        let removed = try PrometheusText(metrics.scrape())
        for family in removed.families.values {
            XCTAssertFalse(family.samples.contains { $0.labels["peer"] == "db2" }, "\(family.name) still has db2")
        }
        XCTAssertEqual(removed.value("meshd_peer_up", ["peer": "db1"]), 1)
    }

    func testConcurrentScrapesCountOnce() async throws {
        let source = SetSource()
        let metrics = MeshMetrics(source: source)
        source.snapshot.withLockedValue { $0.peers = [Self.peer("db1", up: true, sent: 0)] }
        _ = metrics.scrape()
        source.snapshot.withLockedValue { $0.peers = [Self.peer("db1", up: true, sent: 4096)] }
        await withTaskGroup(of: Void.self) { group in
            for _ in 0..<16 { group.addTask { _ = metrics.scrape() } }
        }
        let text = try PrometheusText(metrics.scrape())
        XCTAssertEqual(text.value("meshd_bytes_total", ["peer": "db1", "direction": "sent"]), 4096)
    }
}
