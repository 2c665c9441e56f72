import Foundation
import MeshTestSupport
import XCTest

/// The watchdog means something: a real meshd with one event loop blocked by the test-only
/// `--debug-stall-event-loop-after` flag stops its WATCHDOG=1 pings within one period.
final class WatchdogTests: MeshTestCase {
    func testBlockedEventLoopStopsPingsWithinOnePeriod() throws {
        let mesh = try self.makeMesh(range: 12, nodes: ["app1", "db1"])
        let notify = try self.makeNotifySocket()
        let app1 = try mesh.start(
            "app1",
            environment: ["NOTIFY_SOCKET": notify.path, "WATCHDOG_USEC": "1000000"],
            extraArguments: ["--debug-stall-event-loop-after", "3"]
        )
        guard let stalled = notify.waitFor(timeout: .seconds(20), { $0.fields["STATUS"]?.contains("stalled") == true }) else {
            return XCTFail("meshd never reported the stall\n\(notify.transcript)\n\(app1.logTail())")
        }
        let stallAt = notify.messages[stalled].at
        let pingsBefore = notify.messages[..<stalled].filter { $0.has("WATCHDOG=1") && $0.at >= stallAt - .seconds(2) }
        XCTAssertGreaterThanOrEqual(pingsBefore.count, 2, "a healthy meshd pings every half period\n\(notify.transcript)")

        // Watch for three periods after the stall.
        Thread.sleep(forTimeInterval: 3.2)
        let late = notify.messages.filter { $0.has("WATCHDOG=1") && $0.at > stallAt + .seconds(1) }
        XCTAssertEqual(late.count, 0, "WATCHDOG=1 more than one period after the stall\n\(notify.transcript)")
        XCTAssertTrue(app1.isRunning, "meshd itself keeps running; it is systemd that would restart it")
        XCTAssertNotNil(
            app1.waitForLog(containing: ["watchdog:", "did not run a no-op task", "withholding WATCHDOG=1"], timeout: .seconds(1)),
            app1.logTail()
        )

        // Shutdown releases the stalled loop, so SIGTERM still ends meshd cleanly.
        let mark = notify.messages.count
        XCTAssertEqual(app1.stop(grace: .seconds(20)), 0, app1.logTail())
        XCTAssertNotNil(notify.waitFor(from: mark, timeout: .seconds(1)) { $0.has("STOPPING=1") }, notify.transcript)
    }

    /// The flag is documented in --help as test-only.
    func testStallFlagIsDocumentedAsTestOnly() throws {
        let result = try Command.run(BuildProducts.meshd.path, ["--help"], timeout: .seconds(30))
        XCTAssertEqual(result.status, 0, result.output)
        let help = result.output.replacingOccurrences(of: "\n", with: " ").split(separator: " ").joined(separator: " ")
        XCTAssertTrue(help.contains("--debug-stall-event-loop-after <SECONDS>"), result.output)
        XCTAssertTrue(help.contains("Test only:"), result.output)
    }
}
