import Foundation
import MeshTestSupport
import XCTest

/// Restarts without refused connections: the test holds db1's listening sockets, as systemd holds
/// a `.socket` unit's, and passes them to each meshd it starts (LISTEN_FDS, LISTEN_PID,
/// LISTEN_FDNAMES). While meshd is down the kernel queues connections on them; the next meshd
/// adopts the same sockets and serves what queued.
final class RestartTests: MeshTestCase {
    private struct Setup {
        var mesh: TestMesh
        var forward: (host: String, port: Int)
        var sockets: [TCPSocket]
        var names: String
    }

    /// app1 (which dials db1) and db1, whose tunnel listener and forward (to an echo service on
    /// app1) are sockets the test holds.
    private func setUpMesh(range: Int) throws -> Setup {
        let mesh = try self.makeMesh(range: range, nodes: ["app1", "db1"])
        let echo = try self.makeEchoServer()
        mesh.addService("echo", on: ["app1": echo.endpoint], allow: ["db1"])
        let forward = try mesh.addForward(on: "db1", to: "echo@app1")
        let db1Mesh = mesh.meshAddress("db1")
        let sockets = [
            try self.makeListener(host: db1Mesh.host, port: db1Mesh.port),
            try self.makeListener(host: forward.host, port: forward.port),
        ]
        return Setup(mesh: mesh, forward: forward, sockets: sockets, names: "mesh:forward-\(forward.port)")
    }

    private func startDB1(_ setup: Setup) throws -> SpawnedProcess {
        try setup.mesh.start("db1", environment: ["LISTEN_FDNAMES": setup.names], passing: setup.sockets.map(\.fd))
    }

    /// kill -9 db1: app1's redial meets the held socket (queued, not refused) and completes its
    /// handshake with the next db1, and a client connecting meanwhile is accepted by the kernel.
    func testTunnelDialDuringRestartIsServedNotRefused() throws {
        let setup = try self.setUpMesh(range: 14)
        let mesh = setup.mesh
        let first = try self.startDB1(setup)
        let app1 = try mesh.start("app1")
        guard mesh.waitUp(app1, peer: "db1"), mesh.waitUp(first, peer: "app1") else { return }
        XCTAssertTrue(first.log().contains("listener mesh: adopting fd 3"), first.logTail())
        XCTAssertNotNil(self.waitForEcho(host: setup.forward.host, port: setup.forward.port, timeout: .seconds(10)), mesh.allLogs())

        let mark = app1.logMark()
        first.kill9()
        let db1Mesh = mesh.meshAddress("db1")
        XCTAssertNoThrow(try TCPSocket.connect(host: db1Mesh.host, port: db1Mesh.port), "the kernel accepts while meshd is down")
        XCTAssertNotNil(app1.waitForLog(containing: ["peer db1 down"], after: mark, timeout: .seconds(5)), app1.logTail())
        Thread.sleep(forTimeInterval: 2)  // app1 redials (backoff_max 1s) into the queue

        let second = try self.startDB1(setup)
        XCTAssertNotNil(second.waitForLog(containing: ["peer app1 up"], timeout: .seconds(15)), mesh.allLogs())
        XCTAssertNotNil(
            app1.waitForLog(containing: ["peer db1 up"], after: mark, timeout: .seconds(5)),
            "app1's tunnel came back\n\(app1.logTail())"
        )
        let after = app1.log(after: mark)
        XCTAssertFalse(after.lowercased().contains("connection refused"), "no dial was refused during the restart\n\(after)")
        XCTAssertNotNil(self.waitForEcho(host: setup.forward.host, port: setup.forward.port, timeout: .seconds(10)), mesh.allLogs())
    }

    /// A client that connects to db1's forward while db1 is down is served by the next db1.
    func testForwardClientDuringRestartIsServed() throws {
        let setup = try self.setUpMesh(range: 15)
        let mesh = setup.mesh
        let first = try self.startDB1(setup)
        let app1 = try mesh.start("app1")
        guard mesh.waitUp(app1, peer: "db1"), mesh.waitUp(first, peer: "app1") else { return }
        XCTAssertNotNil(self.waitForEcho(host: setup.forward.host, port: setup.forward.port, timeout: .seconds(10)), mesh.allLogs())

        first.kill9()
        let payload = randomBytes(4096)
        let client = try TCPSocket.connect(host: setup.forward.host, port: setup.forward.port)
        try client.send(payload)
        client.shutdownWrite()
        Thread.sleep(forTimeInterval: 1)

        _ = try self.startDB1(setup)
        let outcome = client.readAll(timeout: .seconds(20))
        XCTAssertEqual(outcome.end, .eof, "\(mesh.allLogs())")
        XCTAssertEqual(outcome.data, payload, "the queued client's bytes were echoed after the restart")
    }
}
