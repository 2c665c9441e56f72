import Foundation
import MeshTestSupport
import NIOCore
import XCTest

/// A serving node killed with SIGKILL: its peer notices, clients see resets, and the mesh heals when
/// the node comes back.
final class PeerFailureTests: MeshTestCase {
    /// kill -9 db1: app1 logs `peer db1 down` (the issue asks for ≤ 3 s; the test allows 10 s and prints
    /// the measured time); restarted, the forward works again (issue: ≤ backoff_max + 1 s = 3 s;
    /// bound 15 s, time printed).
    func testKilledPeerIsReportedDownAndForwardRecoversAfterRestart() throws {
        let mesh = try self.makeMesh(range: 4, nodes: ["app1", "db1"])
        let forward = try self.addEchoForward(mesh)
        guard case let (app1, db1)? = try self.startPair(mesh) else { return }
        XCTAssertTrue(self.echoWorks(host: forward.host, port: forward.port), "forward works before the kill")

        let mark = app1.logMark()
        let killed = ContinuousClock.now
        db1.kill9()
        let down = app1.waitForLog(containing: "peer db1 down", after: mark, timeout: .seconds(10))
        let detection = ContinuousClock.now - killed
        XCTAssertNotNil(down, "app1 did not report db1 down within 10 s of kill -9\n\(app1.logTail())")
        print("kill -9 db1 -> app1 reported 'peer db1 down' after \(detection.milliseconds) ms: \(down ?? "-")")

        // Let app1 go through a few failed redials before the node comes back.
        Thread.sleep(forTimeInterval: 1.5)
        let upMark = app1.logMark()
        _ = try mesh.start("db1")
        let recovered = self.waitForEcho(host: forward.host, port: forward.port, timeout: .seconds(15))
        XCTAssertNotNil(recovered, "forward did not work again within 15 s of restarting db1\n\(mesh.allLogs())")
        let upLine = app1.waitForLog(containing: "peer db1 up", after: upMark, timeout: .seconds(1))
        XCTAssertNotNil(upLine, "app1 never logged 'peer db1 up' after the restart")
        print(
            "db1 restarted -> forward echo works again after \((recovered ?? .zero).milliseconds) ms (from process start, incl. meshd start-up)"
        )
    }

    /// A frozen db1 (SIGSTOP: sockets stay open, nothing answers, as with a hung host or a dropped
    /// route) is only noticed through PINGs: app1 reports it down after `dead_after` missed PINGs
    /// (1 s x 3 here; bound 10 s, time printed); thawed, the forward works again.
    func testFrozenPeerIsDetectedByMissedPingsAndRecovers() throws {
        let mesh = try self.makeMesh(range: 15, nodes: ["app1", "db1"])
        let forward = try self.addEchoForward(mesh)
        let app1 = try mesh.start("app1")
        let db1 = try mesh.start("db1")
        self.addCleanup { db1.thaw() }
        guard mesh.waitUp(app1, peer: "db1") else { return }
        XCTAssertTrue(self.echoWorks(host: forward.host, port: forward.port), "forward works before the freeze")

        let mark = app1.logMark()
        let frozen = ContinuousClock.now
        db1.freeze()
        let down = app1.waitForLog(containing: "peer db1 down", after: mark, timeout: .seconds(10))
        let detection = ContinuousClock.now - frozen
        XCTAssertNotNil(down, "app1 did not report a frozen db1 down within 10 s\n\(app1.logTail())")
        XCTAssertTrue(down?.contains("PING") ?? false, "the reason names the missed PINGs: \(down ?? "-")")
        print("SIGSTOP db1 -> app1 reported 'peer db1 down' after \(detection.milliseconds) ms: \(down ?? "-")")

        let thawed = ContinuousClock.now
        db1.thaw()
        let recovered = self.waitForEcho(host: forward.host, port: forward.port, timeout: .seconds(15))
        XCTAssertNotNil(recovered, "forward did not work again within 15 s of SIGCONT\n\(mesh.allLogs())")
        print("SIGCONT db1 -> forward echo works again after \((ContinuousClock.now - thawed).milliseconds) ms")
    }

    /// A stream held open through the tunnel (client sent data, never half-closed) is cut by kill -9
    /// of the serving node: the client's read ends with ECONNRESET, never a clean EOF.
    func testStreamCutByKilledNodeIsResetNotEOF() throws {
        try self.killDuringHeldStream(range: 5, victim: "db1")
    }

    /// The other end of the same failure: kill -9 of the node the *client* is connected to. The
    /// kernel closes the dead meshd's sockets, and a plain close is a FIN that the client would take
    /// for a complete response; the splice's SO_LINGER 0 makes it a reset instead.
    func testStreamCutByKilledForwardNodeIsResetNotEOF() throws {
        try self.killDuringHeldStream(range: 110, victim: "app1")
    }

    /// app1 forwards to an echo service on db1; one stream echoes 32 KiB and stays open (no
    /// half-close); then `victim`'s meshd is killed with -9 and the client must see a reset with
    /// everything echoed before the kill intact.
    private func killDuringHeldStream(range: Int, victim: String) throws {
        let mesh = try self.makeMesh(range: range, nodes: ["app1", "db1"])
        let forward = try self.addEchoForward(mesh)
        let nodes = ["app1": try mesh.start("app1"), "db1": try mesh.start("db1")]
        guard mesh.waitUp(nodes["app1"]!, peer: "db1") else { return }

        let payload = self.randomBuffer(32 * 1024)
        let echoed = self.group.next().makePromise(of: Void.self)
        let outcome = StreamClient.start(
            group: self.group,
            host: forward.host,
            port: forward.port,
            payload: payload,
            halfClose: false,
            timeout: .seconds(30),
            echoed: echoed
        )
        // The echo coming back proves the stream is spliced end to end before the kill.
        XCTAssertNoThrow(try echoed.futureResult.wait(), "the held stream never echoed its payload\n\(mesh.allLogs())")

        let killed = ContinuousClock.now
        nodes[victim]!.kill9()
        let result = try outcome.wait()
        print("held stream after kill -9 \(victim): \(result.end) after \((ContinuousClock.now - killed).milliseconds) ms")
        XCTAssertEqual(
            result.end,
            .reset,
            "a stream cut by kill -9 of \(victim) must be reset (RST), not closed with FIN\n\(mesh.allLogs())"
        )
        XCTAssertEqual(result.received, payload, "the echo received before the kill")
    }
}
