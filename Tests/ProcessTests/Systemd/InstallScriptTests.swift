import Foundation
import MeshTestSupport
import XCTest

/// scripts/install.sh staged with --destdir into a temp directory (what a package build does).
final class InstallScriptTests: XCTestCase {
    func testDestdirInstallLaysOutTheTreeAndKeepsAnExistingConfig() throws {
        for binary in [BuildProducts.meshd, BuildProducts.meshctl] {
            guard FileManager.default.isExecutableFile(atPath: binary.path) else {
                throw XCTSkip("missing \(binary.path): build the products first")
            }
        }
        let fm = FileManager.default
        let dest = fm.temporaryDirectory.appendingPathComponent("tunnelmesh-install-\(UUID().uuidString.prefix(8))")
        defer { try? fm.removeItem(at: dest) }
        let args = ["--destdir", dest.path, "--from", BuildProducts.directory.path, "--prefix", "/opt/tunnelmesh"]

        let first = try Command.run("/bin/bash", [RepositoryFiles.installScript.path] + args, timeout: .seconds(60))
        XCTAssertEqual(first.status, 0, first.output)
        XCTAssertTrue(first.stdout.contains("Next steps"), first.output)
        XCTAssertTrue(first.stdout.contains("not creating the meshd user"), first.output)

        for binary in ["meshd", "meshctl"] {
            let path = dest.appendingPathComponent("opt/tunnelmesh/bin/\(binary)").path
            XCTAssertTrue(fm.isExecutableFile(atPath: path), path)
            XCTAssertEqual(fm.contents(atPath: path), fm.contents(atPath: BuildProducts.directory.appendingPathComponent(binary).path))
        }
        let unitDir = dest.appendingPathComponent("etc/systemd/system")
        for unit in try RepositoryFiles.unitFiles() {
            let installed = try String(contentsOf: unitDir.appendingPathComponent(unit.lastPathComponent), encoding: .utf8)
            let original = try String(contentsOf: unit, encoding: .utf8)
            // Identical but for ExecStart following --prefix.
            XCTAssertEqual(installed, original.replacingOccurrences(of: "/usr/local/bin/meshd", with: "/opt/tunnelmesh/bin/meshd"))
        }
        let service = try String(contentsOf: unitDir.appendingPathComponent("meshd.service"), encoding: .utf8)
        XCTAssertTrue(service.contains("ExecStart=/opt/tunnelmesh/bin/meshd --config /etc/meshd/mesh.json"), service)

        let conf = dest.appendingPathComponent("etc/meshd")
        let config = conf.appendingPathComponent("mesh.json")
        let installedConfig = try XCTUnwrap(
            JSONSerialization.jsonObject(with: Data(contentsOf: config)) as? [String: Any],
            "mesh.json is valid JSON"
        )
        let nodes = try XCTUnwrap(installedConfig["nodes"] as? [String: [String: Any]])
        XCTAssertEqual(nodes["app1"]?["address"] as? String, "127.0.1.3:7443")
        XCTAssertTrue(nodes.values.allSatisfy { $0["control"] == nil }, "control sockets default to /run/meshd/control.sock")
        XCTAssertTrue(fm.fileExists(atPath: conf.appendingPathComponent("pki").path))
        XCTAssertEqual(
            try String(contentsOf: conf.appendingPathComponent("meshd.env"), encoding: .utf8)
                .split(separator: "\n").last,
            "MESHD_OPTS=\"--node app1\""
        )
        let mode = try XCTUnwrap(fm.attributesOfItem(atPath: conf.path)[.posixPermissions] as? NSNumber)
        XCTAssertEqual(mode.intValue, 0o750, "/etc/meshd is not world-readable")

        // A second run keeps the operator's edited config.
        try Data("{\"edited\": true}".utf8).write(to: config)
        let second = try Command.run("/bin/bash", [RepositoryFiles.installScript.path] + args, timeout: .seconds(60))
        XCTAssertEqual(second.status, 0, second.output)
        XCTAssertEqual(try String(contentsOf: config, encoding: .utf8), "{\"edited\": true}")
        XCTAssertTrue(second.stdout.contains("kept the existing"), second.output)

        let bad = try Command.run(
            "/bin/bash",
            [RepositoryFiles.installScript.path, "--prefix", "relative/path", "--destdir", dest.path],
            timeout: .seconds(30)
        )
        XCTAssertEqual(bad.status, 2, bad.output)
        XCTAssertTrue(bad.stderr.contains("--prefix must be an absolute path"), bad.output)
    }
}
