import Foundation
import MeshTestSupport
import XCTest

/// meshd refuses to start on a broken config or certificate: exit status 2, a message naming the
/// file and the problem on stderr, and no listener opened.
final class BadConfigTests: MeshTestCase {
    /// Runs meshd to completion (bounded) and checks it exited 2 without binding its mesh port.
    private func expectStartupFailure(
        _ mesh: TestMesh,
        config: URL,
        node: String = "app1",
        mentions needles: [String],
        file: StaticString = #filePath,
        line: UInt = #line
    ) throws {
        let result = try Command.run(
            BuildProducts.meshd.path,
            ["--config", config.path, "--node", node],
            timeout: .seconds(20)
        )
        XCTAssertFalse(result.timedOut, "meshd kept running on a bad config:\n\(result.output)", file: file, line: line)
        XCTAssertEqual(result.status, 2, "exit status; stderr:\n\(result.stderr)", file: file, line: line)
        for needle in needles {
            XCTAssertTrue(result.stderr.contains(needle), "stderr should mention \"\(needle)\":\n\(result.stderr)", file: file, line: line)
        }
        XCTAssertFalse(
            result.output.contains("listening"),
            "meshd opened a listener before failing:\n\(result.output)",
            file: file,
            line: line
        )
        // The mesh port is still free: nothing was bound, not even briefly left behind.
        let (host, port) = mesh.meshAddress(node)
        XCTAssertThrowsError(
            try TCPSocket.connect(host: host, port: port, timeout: .seconds(1)),
            "something listens on \(host):\(port)",
            file: file,
            line: line
        )
        print("meshd exit \(result.status): \(result.stderr.trimmingCharacters(in: .whitespacesAndNewlines))")
    }

    func testMalformedJSONExits2NamingTheFile() throws {
        let mesh = try self.makeMesh(range: 11, nodes: ["app1", "db1"])
        let good = try String(contentsOf: try mesh.writeConfig(), encoding: .utf8)
        let broken = mesh.root.appendingPathComponent("broken.json")
        // A missing comma between two members, as a hand edit leaves it.
        let text = good.replacingOccurrences(of: "\"mesh\" : \"itest\",", with: "\"mesh\" : \"itest\"")
        XCTAssertNotEqual(text, good, "the fixture edit must apply")
        try Data(text.utf8).write(to: broken)
        try self.expectStartupFailure(mesh, config: broken, mentions: [broken.path, "invalid JSON"])
    }

    func testMissingCertificateFileExits2NamingTheFile() throws {
        let mesh = try self.makeMesh(range: 12, nodes: ["app1", "db1"])
        try FileManager.default.removeItem(at: mesh.pki.cert("app1"))
        let config = try mesh.writeConfig()
        try self.expectStartupFailure(mesh, config: config, mentions: [mesh.pki.cert("app1").path, "does not exist"])
    }

    func testKeyNotMatchingCertificateExits2NamingBothFiles() throws {
        let mesh = try self.makeMesh(range: 13, nodes: ["app1", "db1"])
        // app1's certificate with db1's key: both valid files, wrong pair.
        var file = mesh.file
        file.tls.cert = "pki/app1.pem"
        file.tls.key = "pki/db1.key"
        let config = try mesh.writeConfig(file, name: "mismatch.json")
        try self.expectStartupFailure(
            mesh,
            config: config,
            mentions: [mesh.pki.key("db1").path, mesh.pki.cert("app1").path, "does not match"]
        )
    }

    func testMissingBalancerCertificateExits2NamingTheFileAndKey() throws {
        let mesh = try self.makeMesh(range: 19, nodes: ["app1", "db1"])
        mesh.file.services["postgres"] = .init(on: ["db1": "127.0.0.1:5432"], allow: ["app1"], postgres: .init())
        let host = mesh.host("app1")
        mesh.file.balancers = [
            "pg": .init(
                service: "postgres",
                on: ["app1": .init(rw: "\(host):\(try mesh.freePort(host))")],
                tls: .init(cert: "pki/missing-balancer.pem", key: "pki/app1.key")
            )
        ]
        let config = try mesh.writeConfig()
        try self.expectStartupFailure(mesh, config: config, mentions: ["missing-balancer.pem", "balancers.pg.tls"])
    }
}
