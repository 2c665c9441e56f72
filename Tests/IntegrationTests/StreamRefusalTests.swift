import Foundation
import MeshTestSupport
import NIOCore
import XCTest

/// The serving node decides, from the peer's verified identity and its own mesh.json, whether a
/// stream may open a service; a refusal reaches the client as a reset and is logged.
final class StreamRefusalTests: MeshTestCase {
    /// app1 is a declared, authenticated peer, but service "secret" allows only db2.
    func testPeerNotOnAllowListIsRefused() throws {
        let mesh = try self.makeMesh(range: 9, nodes: ["app1", "db1", "db2"])
        let secret = try self.makeEchoServer()
        let echo = try self.makeEchoServer()
        mesh.addService("secret", on: ["db1": secret.endpoint], allow: ["db2"])
        mesh.addService("echo", on: ["db1": echo.endpoint], allow: ["app1"])
        let refused = try mesh.addForward(on: "app1", to: "secret@db1")
        let allowed = try mesh.addForward(on: "app1", to: "echo@db1")
        let app1 = try mesh.start("app1")
        let db1 = try mesh.start("db1")
        guard mesh.waitUp(app1, peer: "db1") else { return }

        let mark = db1.logMark()
        let outcome = StreamClient.exchange(
            group: self.group,
            host: refused.host,
            port: refused.port,
            payload: self.randomBuffer(512),
            timeout: .seconds(15)
        )
        XCTAssertEqual(outcome.end, .reset, "a refused stream must reach the client as a reset")
        XCTAssertEqual(outcome.received.readableBytes, 0, "nothing of the secret service may come back")
        let line = db1.waitForLog(containing: ["stream refused", "secret"], after: mark, timeout: .seconds(5))
        XCTAssertNotNil(line, "db1 did not log the refusal\n\(db1.logTail())")
        XCTAssertTrue(line?.contains("app1") ?? false, "the refusal names the peer: \(line ?? "-")")
        XCTAssertTrue(line?.contains("403") ?? false, "not allowed is status 403: \(line ?? "-")")
        print("not allowed: client saw \(outcome.end); db1 logged: \(line ?? "-")")
        XCTAssertTrue(self.echoWorks(host: allowed.host, port: allowed.port), "an allowed service still works on the same tunnel")
    }

    /// app1's mesh.json declares a service db1's own mesh.json does not: db1 refuses the name.
    func testUndeclaredServiceIsRefused() throws {
        let mesh = try self.makeMesh(range: 10, nodes: ["app1", "db1"])
        let echo = try self.makeEchoServer()
        mesh.addService("echo", on: ["db1": echo.endpoint], allow: ["app1"])
        let allowed = try mesh.addForward(on: "app1", to: "echo@db1")
        let db1Config = try mesh.writeConfig(name: "mesh-db1.json")
        mesh.addService("phantom", on: ["db1": echo.endpoint], allow: ["app1"])
        let phantom = try mesh.addForward(on: "app1", to: "phantom@db1")
        let app1Config = try mesh.writeConfig(name: "mesh-app1.json")
        let app1 = try mesh.start("app1", config: app1Config)
        let db1 = try mesh.start("db1", config: db1Config)
        guard mesh.waitUp(app1, peer: "db1") else { return }

        let mark = db1.logMark()
        let outcome = StreamClient.exchange(
            group: self.group,
            host: phantom.host,
            port: phantom.port,
            payload: self.randomBuffer(512),
            timeout: .seconds(15)
        )
        XCTAssertEqual(outcome.end, .reset, "a stream to an undeclared service must reach the client as a reset")
        XCTAssertEqual(outcome.received.readableBytes, 0)
        let line = db1.waitForLog(containing: ["stream refused", "phantom"], after: mark, timeout: .seconds(5))
        XCTAssertNotNil(line, "db1 did not log the refusal\n\(db1.logTail())")
        XCTAssertTrue(line?.contains("404") ?? false, "an unknown service is status 404: \(line ?? "-")")
        print("undeclared service: client saw \(outcome.end); db1 logged: \(line ?? "-")")
        XCTAssertTrue(self.echoWorks(host: allowed.host, port: allowed.port), "a declared service still works on the same tunnel")
    }
}
