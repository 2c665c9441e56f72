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
        let installedService = try String(contentsOf: unitDir.appendingPathComponent("meshd.service"), encoding: .utf8)
        let service = try String(contentsOf: RepositoryFiles.units.appendingPathComponent("meshd.service"), encoding: .utf8)
        // Identical but for ExecStart following --prefix.
        XCTAssertEqual(installedService, service.replacingOccurrences(of: "/usr/local/bin/meshd", with: "/opt/tunnelmesh/bin/meshd"))
        XCTAssertTrue(installedService.contains("ExecStart=/opt/tunnelmesh/bin/meshd --config /etc/meshd/mesh.json"), installedService)
        XCTAssertEqual(
            try fm.contentsOfDirectory(atPath: unitDir.path).filter { $0.hasSuffix(".socket") },
            [],
            "socket units are generated, not installed"
        )
        // The generator, in the administrator's generator directory, runs the installed meshctl.
        let generator = dest.appendingPathComponent("etc/systemd/system-generators/meshd-generator").path
        XCTAssertTrue(fm.isExecutableFile(atPath: generator), generator)
        XCTAssertEqual(
            try String(contentsOfFile: generator, encoding: .utf8),
            try String(contentsOf: RepositoryFiles.generator, encoding: .utf8)
                .replacingOccurrences(of: "/usr/bin/meshctl", with: "/opt/tunnelmesh/bin/meshctl")
        )

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
        // meshd.env names no node yet, so the installed generator writes nothing and succeeds;
        // once it says MESHD_NODE, it writes that node's units.
        let env = conf.appendingPathComponent("meshd.env")
        XCTAssertTrue(try String(contentsOf: env, encoding: .utf8).contains("\n#MESHD_NODE=\n"))
        let out = dest.appendingPathComponent("generator-out")
        try fm.createDirectory(at: out, withIntermediateDirectories: true)
        let generatorEnvironment = [
            "PATH": "/usr/bin:/bin",
            "MESHD_GENERATOR_MESHCTL": dest.appendingPathComponent("opt/tunnelmesh/bin/meshctl").path,
            "MESHD_CONFIG": config.path,
            "MESHD_ENV_FILE": env.path,
        ]
        let unnamed = try Command.run("/bin/sh", [generator, out.path], environment: generatorEnvironment, timeout: .seconds(30))
        XCTAssertEqual(unnamed.status, 0, unnamed.output)
        XCTAssertTrue(unnamed.stderr.contains("no node name"), unnamed.output)
        // No socket unit, only the drop-in that keeps the enabled meshd.service from failing the boot.
        XCTAssertEqual(try fm.contentsOfDirectory(atPath: out.path), ["meshd.service.d"])
        try (try String(contentsOf: env, encoding: .utf8) + "MESHD_NODE=db1\n").write(to: env, atomically: true, encoding: .utf8)
        // systemd empties the generator's directory before every run.
        try fm.removeItem(at: out)
        try fm.createDirectory(at: out, withIntermediateDirectories: true)
        let named = try Command.run("/bin/sh", [generator, out.path], environment: generatorEnvironment, timeout: .seconds(30))
        XCTAssertEqual(named.status, 0, named.output)
        XCTAssertFalse(fm.fileExists(atPath: out.appendingPathComponent("meshd.service.d").path), "a named node's meshd.service may start")
        XCTAssertTrue(
            try String(contentsOf: out.appendingPathComponent("meshd.socket"), encoding: .utf8).contains("ListenStream=127.0.1.1:7443")
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
