import Foundation
import MeshTestSupport
import NIOCore
import XCTest

/// SIGTERM: meshd stops accepting, drains for `shutdown_grace`, exits 0; a stream still open when
/// the grace ends is reset for its client, never ended with a FIN that would look complete.
final class ShutdownTests: MeshTestCase {
    func testSIGTERMExitsZeroAndResetsStreamsStillOpenAfterGrace() throws {
        let mesh = try self.makeMesh(
            range: 16,
            nodes: ["app1", "db1"],
            tunnel: .init(pingInterval: "1s", deadAfter: 3, backoffMax: "2s", shutdownGrace: "1s")
        )
        let forward = try self.addEchoForward(mesh)
        guard case let (app1, db1)? = try self.startPair(mesh) else { return }

        let payload = self.randomBuffer(16 * 1024)
        let echoed = self.group.next().makePromise(of: Void.self)
        let held = StreamClient.start(
            group: self.group,
            host: forward.host,
            port: forward.port,
            payload: payload,
            halfClose: false,
            timeout: .seconds(30),
            echoed: echoed
        )
        XCTAssertNotNil(waitBounded(echoed.futureResult, timeout: .seconds(10)), "the held stream never echoed\n\(mesh.allLogs())")

        let signalled = ContinuousClock.now
        kill(db1.pid, SIGTERM)
        let status = db1.waitForExit(timeout: .seconds(15))
        let exited = ContinuousClock.now - signalled
        XCTAssertEqual(status, 0, "db1 exit status after SIGTERM\n\(db1.logTail())")
        XCTAssertFalse(db1.wasSignalled, "db1 should exit by itself, not die of the signal")
        let outcome = waitBounded(held, timeout: .seconds(15))
        print(
            "SIGTERM db1 with a held stream: exit \(status.map(String.init) ?? "none") after \(exited.milliseconds) ms; client saw \(outcome?.end.description ?? "nothing")"
        )
        XCTAssertEqual(outcome?.end, .reset, "a stream cut by shutdown must be reset, not ended with EOF\n\(mesh.allLogs())")
        XCTAssertEqual(outcome?.received, payload, "the echo received before the shutdown")
        XCTAssertNotNil(app1.waitForLog(containing: "peer db1 down", timeout: .seconds(5)), "app1 noticed db1 leaving")
    }

    /// The client sent everything and half-closed; the echo comes back slowly (1 KiB per 50 ms, so
    /// 64 KiB takes ~3 s) and SIGTERM arrives mid-echo with a 1 s grace. Whichever node is stopped,
    /// the client must end with a reset and a short echo, never a clean EOF after a partial echo.
    func testSIGTERMOfServingNodeMidEchoResetsTheClient() throws {
        try self.sigtermMidEcho(range: 17, stopping: "db1")
    }

    func testSIGTERMOfForwardingNodeMidEchoResetsTheClient() throws {
        try self.sigtermMidEcho(range: 18, stopping: "app1")
    }

    private func sigtermMidEcho(range: Int, stopping node: String) throws {
        let mesh = try self.makeMesh(
            range: range,
            nodes: ["app1", "db1"],
            tunnel: .init(pingInterval: "1s", deadAfter: 3, backoffMax: "2s", shutdownGrace: "1s")
        )
        let trickle = try self.makeTrickleEchoServer()
        mesh.addService("trickle", on: ["db1": trickle.endpoint], allow: ["app1"])
        let forward = try mesh.addForward(on: "app1", to: "trickle@db1")
        let app1 = try mesh.start("app1")
        let db1 = try mesh.start("db1")
        guard mesh.waitUp(app1, peer: "db1") else { return }

        let payload = self.randomBuffer(64 * 1024)
        let outcome = StreamClient.start(
            group: self.group,
            host: forward.host,
            port: forward.port,
            payload: payload,
            halfClose: true,
            timeout: .seconds(30)
        )
        Thread.sleep(forTimeInterval: 0.5)  // a few KiB echoed, most still owed
        let target = node == "db1" ? db1 : app1
        kill(target.pid, SIGTERM)
        let status = target.waitForExit(timeout: .seconds(15))
        let result = waitBounded(outcome, timeout: .seconds(30))
        print(
            "SIGTERM \(node) mid-echo: exit \(status.map(String.init) ?? "none"); client saw \(result?.end.description ?? "nothing") after \(result?.received.readableBytes ?? 0) of \(payload.readableBytes) bytes"
        )
        XCTAssertEqual(status, 0, "\(node) exit status after SIGTERM\n\(target.logTail())")
        guard let result else {
            XCTFail("the client never finished\n\(mesh.allLogs())")
            return
        }
        XCTAssertLessThan(result.received.readableBytes, payload.readableBytes, "the echo should have been cut by the 1 s grace")
        XCTAssertEqual(result.end, .reset, "a cut stream must end with a reset, not a clean EOF\n\(mesh.allLogs())")
    }
}
