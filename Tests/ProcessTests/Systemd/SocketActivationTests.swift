import Foundation
import MeshTestSupport
import XCTest

/// Socket activation through the real `systemd-socket-activate` (Debian's systemd package): it
/// binds the sockets, names them with `--fdname`, and starts meshd on the first connection.
final class SocketActivationTests: MeshTestCase {
    /// db1's tunnel listener and forward are sockets bound by systemd-socket-activate; app1's dial
    /// to db1 is what starts db1's meshd. Traffic then flows through both adopted sockets (app1's
    /// tunnel lands on the adopted `mesh` socket, the client on the adopted `forward-<port>`), and
    /// a third socket with a name db1 has no listener for is closed with a warning.
    func testNamedSocketsAreAdoptedAndCarryTraffic() throws {
        let activate = "/usr/bin/systemd-socket-activate"
        guard FileManager.default.isExecutableFile(atPath: activate) else {
            throw XCTSkip("\(activate) is missing: install Debian's systemd package (scripts/test.sh does)")
        }
        let mesh = try self.makeMesh(range: 13, nodes: ["app1", "db1"])
        let echo = try self.makeEchoServer()
        mesh.addService("echo", on: ["app1": echo.endpoint], allow: ["db1"])
        let forward = try mesh.addForward(on: "db1", to: "echo@app1")
        let stray = (host: mesh.host("db1"), port: try mesh.freePort(mesh.host("db1")))
        let db1Mesh = mesh.meshAddress("db1")
        let config = try mesh.writeConfig()
        let notify = try self.makeNotifySocket()

        let db1 = try mesh.spawn(
            label: "db1 (socket-activated)",
            executable: activate,
            arguments: [
                "-l", "\(db1Mesh.host):\(db1Mesh.port)",
                "-l", "\(forward.host):\(forward.port)",
                "-l", "\(stray.host):\(stray.port)",
                "--fdname=mesh:forward-\(forward.port):stray",
                "-E", "NOTIFY_SOCKET=\(notify.path)",
                BuildProducts.meshd.path, "--config", config.path, "--node", "db1", "--log-level", "debug",
            ]
        )
        guard db1.waitForLog(containing: ["Listening on", "\(stray.port)"], timeout: .seconds(10)) != nil else {
            return XCTFail("systemd-socket-activate did not open its sockets\n\(db1.logTail())")
        }
        XCTAssertNil(db1.waitForLog(containing: ["node db1 listening"], timeout: .milliseconds(300)), "meshd starts only on demand")

        let app1 = try mesh.start("app1")
        guard mesh.waitUp(app1, peer: "db1"), mesh.waitUp(db1, peer: "app1") else { return }
        let log = db1.log()
        XCTAssertTrue(log.contains("Communication attempt on fd 3"), "app1's dial to the mesh socket started meshd\n\(db1.logTail())")
        XCTAssertTrue(log.contains("listener mesh: adopting fd 3"), db1.logTail())
        XCTAssertTrue(log.contains("listener forward-\(forward.port): adopting fd 4"), db1.logTail())
        XCTAssertTrue(log.contains("fd 5 named \"stray\""), db1.logTail())
        XCTAssertTrue(log.contains("closing it"), db1.logTail())
        XCTAssertFalse(log.contains("cannot listen"), db1.logTail())

        XCTAssertNotNil(
            self.waitForEcho(host: forward.host, port: forward.port, timeout: .seconds(10)),
            "echo through db1's adopted forward socket\n\(mesh.allLogs())"
        )
        XCTAssertTrue(TCPSocket.isRefused(host: stray.host, port: stray.port), "the unclaimed socket was closed")
        XCTAssertNotNil(notify.waitFor(timeout: .seconds(5)) { $0.has("READY=1") }, notify.transcript)
        XCTAssertEqual(db1.stop(), 0, db1.logTail())
    }
}
