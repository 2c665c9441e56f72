import Foundation
import MeshControl
import MeshControlModel
import MeshTestSupport
import XCTest

/// `meshctl status`: fixed status and clock in, exact text out (no colour), and the exact JSON.
final class StatusTextTests: XCTestCase {
    func testHumanText() {
        let text = StatusText.render(
            ControlFixtures.status,
            peers: ControlFixtures.peers,
            now: ControlFixtures.now,
            style: .plain
        )
        XCTAssertEqual(
            text,
            """
            node           app1
            mesh           demo
            version        0.1.0
            uptime         3h 12m (since 2026-02-25 03:01:20 UTC)
            config         /etc/meshd/mesh.json
            config sha256  9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08
            last load      ok, 2026-02-25 03:01:20 UTC (3h ago)
            peers          1/3 up (app9 handshaking, db2 down)
            certificate    expires 2026-05-25 07:13:20 UTC (89 days left)

            """
        )
    }

    func testCertificateWarningsAndFailedLoad() {
        var status = ControlFixtures.status
        status.certificateNotAfter = ControlFixtures.now.addingTimeInterval(3 * 86_400 + 10)
        status.certificateDaysLeft = 3
        status.lastReload = ReloadOutcome(
            ok: false,
            at: ControlFixtures.now.addingTimeInterval(-30),
            error: "mesh.json: nodes.db3.address: missing"
        )
        status.peersUp = 3
        let text = StatusText.render(status, now: ControlFixtures.now, style: .plain)
        XCTAssertTrue(
            text.contains("certificate    expires 2026-02-28 06:13:30 UTC (3 days left) — renew soon: meshctl pki issue app1\n"),
            text
        )
        XCTAssertTrue(
            text.contains("last load      failed, 2026-02-25 06:12:50 UTC (30s ago): mesh.json: nodes.db3.address: missing\n"),
            text
        )
        XCTAssertTrue(text.contains("peers          3/3 up\n"), text)

        status.certificateNotAfter = ControlFixtures.now.addingTimeInterval(-2 * 86_400)
        status.certificateDaysLeft = -2
        XCTAssertTrue(
            StatusText.render(status, now: ControlFixtures.now, style: .plain).contains(
                "certificate    EXPIRED 2026-02-23 06:13:20 UTC (2d ago) — issue a new one: meshctl pki issue app1\n"
            )
        )
    }

    func testJSON() throws {
        XCTAssertEqual(
            try ControlJSON.text(ControlFixtures.status),
            """
            {
              "certificate_days_left" : 89,
              "certificate_not_after" : "2026-05-25T07:13:20Z",
              "config_file" : "/etc/meshd/mesh.json",
              "config_sha256" : "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
              "last_reload" : {
                "at" : "2026-02-25T03:01:20Z",
                "changes" : null,
                "dry_run" : false,
                "error" : null,
                "ok" : true,
                "summary" : null
              },
              "mesh" : "demo",
              "node" : "app1",
              "peers_total" : 3,
              "peers_up" : 1,
              "uptime_seconds" : 11520,
              "version" : "0.1.0"
            }

            """
        )
    }

    func testDaysLeftRoundsDown() {
        let now = ControlFixtures.now
        XCTAssertEqual(AgentStatus.daysLeft(until: now.addingTimeInterval(86_399), now: now), 0)
        XCTAssertEqual(AgentStatus.daysLeft(until: now.addingTimeInterval(86_400), now: now), 1)
        XCTAssertEqual(AgentStatus.daysLeft(until: now.addingTimeInterval(-1), now: now), -1)
    }
}
