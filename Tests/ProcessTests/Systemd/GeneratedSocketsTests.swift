import Foundation
import MeshTestSupport
import XCTest

/// The units `meshctl units` generates are the sockets meshd adopts: each unit's ListenStream= and
/// FileDescriptorName= handed to a meshd named only by MESHD_NODE, through the real
/// `systemd-socket-activate`, is adopted by that name, and none is closed as unknown.
final class GeneratedSocketsTests: MeshTestCase {
    func testEveryGeneratedSocketIsAdoptedByMeshdNamedByMESHD_NODE() throws {
        let activate = "/usr/bin/systemd-socket-activate"
        guard FileManager.default.isExecutableFile(atPath: activate) else {
            throw XCTSkip("\(activate) is missing: install Debian's systemd package (scripts/test.sh does)")
        }
        // db1 gets every kind of listener: the tunnel's, a forward, a balancer's rw and ro, and the
        // same-address listener of app1's member of "member" (named member@app1).
        let mesh = try self.makeMesh(range: 21, nodes: ["app1", "db1"])
        let echo = try self.makeEchoServer()
        mesh.addService("echo", on: ["app1": echo.endpoint], allow: ["db1"])
        try mesh.addForward(on: "db1", to: "echo@app1")
        let db1Host = mesh.host("db1")
        mesh.file.services["pg"] = .init(
            on: ["app1": "\(mesh.host("app1")):\(try mesh.freePort(mesh.host("app1")))"],
            allow: ["db1"],
            postgres: .init()
        )
        mesh.file.balancers = [
            "pg": .init(
                service: "pg",
                on: ["db1": .init(rw: "\(db1Host):\(try mesh.freePort(db1Host))", ro: "\(db1Host):\(try mesh.freePort(db1Host))")]
            )
        ]
        let app1Member = "\(mesh.host("app1")):\(try mesh.freePort(mesh.host("app1")))"
        let db1Member = "\(db1Host):\(try mesh.freePort(db1Host))"
        mesh.file.services["member"] = .init(on: ["app1": app1Member, "db1": db1Member], allow: ["app1", "db1"], sameAddress: true)
        let config = try mesh.writeConfig()

        let units = try GeneratedUnits.render(node: "db1", config: config.path)
        let names = units.compactMap { $0.value("FileDescriptorName") }
        XCTAssertEqual(
            Set(names),
            ["mesh", "forward-\(mesh.file.forwards[0].listen.split(separator: ":").last!)", "pg-rw", "pg-ro", "member@app1"]
        )
        XCTAssertEqual(units.count, names.count)

        let notify = try self.makeNotifySocket()
        let db1 = try mesh.spawn(
            label: "db1 (generated sockets)",
            executable: activate,
            arguments: units.flatMap { ["-l", $0.value("ListenStream") ?? "?"] } + [
                "--fdname=" + names.joined(separator: ":"),
                "-E", "NOTIFY_SOCKET=\(notify.path)",
                "-E", "MESHD_NODE=db1",
                BuildProducts.meshd.path, "--config", config.path, "--log-level", "debug",
            ]
        )
        let mesh1 = mesh.meshAddress("db1")
        guard db1.waitForLog(containing: ["Listening on", "\(mesh1.port)"], timeout: .seconds(10)) != nil else {
            return XCTFail("systemd-socket-activate did not open its sockets\n\(db1.logTail())")
        }
        // The first connection starts meshd; app1 dialing its tunnel is one.
        let app1 = try mesh.start("app1")
        guard mesh.waitUp(db1, peer: "app1") else { return }
        XCTAssertNotNil(notify.waitFor(timeout: .seconds(10)) { $0.has("READY=1") }, notify.transcript)
        let log = db1.log()
        for (index, name) in names.enumerated() {
            XCTAssertTrue(log.contains("listener \(name): adopting fd \(3 + index)"), "\(name)\n\(db1.logTail(80))")
        }
        XCTAssertFalse(log.contains("closing it"), db1.logTail(80))
        XCTAssertFalse(log.contains("is bound to"), db1.logTail(80))
        XCTAssertEqual(db1.stop(), 0, db1.logTail())
        XCTAssertEqual(app1.stop(), 0, app1.logTail())
    }
}
