import Foundation
import MeshTestSupport
import XCTest

/// meshd talking to a service manager: a fake `NOTIFY_SOCKET` the test owns records what a real
/// meshd sends, from start through reloads to shutdown.
final class NotifyTests: MeshTestCase {
    /// READY=1 comes once the listeners are open (they accept at once) without waiting for the
    /// peer; STATUS follows the peer coming up; WATCHDOG=1 keeps a half-period cadence; SIGHUP
    /// gives RELOADING=1 with a current MONOTONIC_USEC and then READY=1, also when the new config
    /// is broken (which STATUS then says); SIGTERM gives STOPPING=1 and a clean exit.
    func testReadyStatusWatchdogReloadAndStopping() throws {
        let mesh = try self.makeMesh(range: 10, nodes: ["app1", "db1"])
        let forward = try self.addEchoForward(mesh)
        let notify = try self.makeNotifySocket()
        let app1 = try mesh.start("app1", environment: ["NOTIFY_SOCKET": notify.path, "WATCHDOG_USEC": "1000000"])

        // READY: listeners open, peer db1 not running at all.
        guard let ready = notify.waitFor(timeout: .seconds(20), { $0.has("READY=1") }) else {
            return XCTFail("no READY=1 within 20 s\n\(notify.transcript)\n\(app1.logTail())")
        }
        let meshPort = mesh.meshAddress("app1")
        XCTAssertNoThrow(try TCPSocket.connect(host: meshPort.host, port: meshPort.port), "mesh listener open at READY")
        XCTAssertNoThrow(try TCPSocket.connect(host: forward.host, port: forward.port), "forward listener open at READY")
        XCTAssertTrue(FileManager.default.fileExists(atPath: mesh.file.nodes["app1"]!.control), "control socket exists at READY")
        let readyStatus = notify.messages[ready].fields["STATUS"] ?? ""
        XCTAssertTrue(readyStatus.hasPrefix("0/1 peers up (db1 "), "READY's STATUS: \(readyStatus)")
        XCTAssertEqual(notify.messages.filter { $0.has("READY=1") }.count, 1, "READY=1 once\n\(notify.transcript)")

        // STATUS follows the peer.
        let db1 = try mesh.start("db1")
        XCTAssertNotNil(
            notify.waitFor(from: ready, timeout: .seconds(15)) { $0.fields["STATUS"] == "1/1 peers up" },
            "STATUS should say the peer is up\n\(notify.transcript)\n\(mesh.allLogs())"
        )

        // Watchdog cadence: period 1 s, so a ping every 0.5 s.
        let windowStart = ContinuousClock.now
        Thread.sleep(forTimeInterval: 2.2)
        let pings = notify.messages.filter { $0.has("WATCHDOG=1") && $0.at >= windowStart && $0.at < windowStart + .seconds(2) }
        XCTAssertTrue((2...6).contains(pings.count), "\(pings.count) WATCHDOG=1 in 2 s, expected 2-6\n\(notify.transcript)")

        // SIGHUP with the config unchanged.
        var before = Self.monotonicMicroseconds()
        var mark = notify.messages.count
        app1.signal(SIGHUP)
        guard let reloading = notify.waitFor(from: mark, timeout: .seconds(10), { $0.has("RELOADING=1") }) else {
            return XCTFail("no RELOADING=1 after SIGHUP\n\(notify.transcript)\n\(app1.logTail())")
        }
        let stamp = UInt64(notify.messages[reloading].fields["MONOTONIC_USEC"] ?? "") ?? 0
        XCTAssertTrue(
            stamp >= before && stamp <= notify.messages[reloading].monotonicMicroseconds,
            "MONOTONIC_USEC=\(stamp) should lie between the SIGHUP (\(before)) and the message's arrival"
        )
        guard let reloaded = notify.waitFor(from: reloading, timeout: .seconds(10), { $0.has("READY=1") }) else {
            return XCTFail("no READY=1 after RELOADING=1\n\(notify.transcript)\n\(app1.logTail())")
        }
        XCTAssertTrue(notify.messages[reloaded].fields["STATUS"]?.contains("config reloaded") == true, notify.transcript)

        // SIGHUP with a broken config: still RELOADING then READY (the old config runs on), and
        // STATUS says why.
        try Data("{ \"mesh\": ".utf8).write(to: mesh.root.appendingPathComponent("mesh.json"))
        before = Self.monotonicMicroseconds()
        mark = notify.messages.count
        app1.signal(SIGHUP)
        let failedReloading = notify.waitFor(from: mark, timeout: .seconds(10)) { $0.has("RELOADING=1") }
        let failedReady = failedReloading.flatMap { notify.waitFor(from: $0, timeout: .seconds(10)) { $0.has("READY=1") } }
        if let failedReady {
            let status = notify.messages[failedReady].fields["STATUS"] ?? ""
            XCTAssertTrue(status.hasPrefix("1/1 peers up, reload failed"), "STATUS: \(status)")
            XCTAssertTrue(status.contains("mesh.json"), "STATUS should name the file: \(status)")
        } else {
            XCTFail("no RELOADING=1 then READY=1 after a SIGHUP with a broken config\n\(notify.transcript)\n\(app1.logTail())")
        }
        XCTAssertNotNil(app1.waitForLog(containing: ["reload rejected"], timeout: .seconds(5)), app1.logTail())
        XCTAssertNotNil(self.waitForEcho(host: forward.host, port: forward.port, timeout: .seconds(10)), "the old config still serves")

        // SIGTERM: STOPPING=1, then a clean exit.
        mark = notify.messages.count
        XCTAssertEqual(app1.stop(), 0, app1.logTail())
        XCTAssertNotNil(notify.waitFor(from: mark, timeout: .seconds(2)) { $0.has("STOPPING=1") }, notify.transcript)
        db1.stop()
    }

    /// Without NOTIFY_SOCKET meshd runs as before and says nothing.
    func testWithoutNotifySocketNothingIsSent() throws {
        let mesh = try self.makeMesh(range: 11, nodes: ["app1", "db1"])
        let notify = try self.makeNotifySocket()
        // The socket exists but meshd is not told about it: nothing may arrive.
        let app1 = try mesh.start("app1", environment: ["WATCHDOG_USEC": "1000000"])
        XCTAssertNotNil(app1.waitForLog(containing: ["node app1 listening"], timeout: .seconds(15)), app1.logTail())
        Thread.sleep(forTimeInterval: 1.5)
        XCTAssertEqual(notify.messages.count, 0, notify.transcript)
        XCTAssertEqual(app1.stop(), 0, app1.logTail())
    }

    static func monotonicMicroseconds() -> UInt64 {
        var now = timespec()
        clock_gettime(CLOCK_MONOTONIC, &now)
        return UInt64(now.tv_sec) * 1_000_000 + UInt64(now.tv_nsec) / 1000
    }
}
