import Foundation
import MeshConfig
import MeshTestSupport
import XCTest

#if canImport(Glibc)
import Glibc
#endif

/// examples/ec2/cloud-init.yaml, checked offline: Debian's `cloud-init schema` accepts it (in a
/// network namespace of its own when run as root, so it cannot have fetched anything), the
/// mesh.json it writes loads, and its MESHD_NODE is one of that file's nodes.
final class CloudInitExampleTests: XCTestCase {
    private var example: URL { RepositoryFiles.root.appendingPathComponent("examples/ec2/cloud-init.yaml") }

    private func cloudInit() throws -> String {
        let path = "/usr/bin/cloud-init"
        guard FileManager.default.isExecutableFile(atPath: path) else {
            throw XCTSkip("cloud-init is missing: install Debian's cloud-init package (scripts/test.sh does)")
        }
        return path
    }

    /// `cloud-init schema -c FILE`, offline.
    private func schema(_ file: URL) throws -> CommandResult {
        let cloudInit = try self.cloudInit()
        let result: CommandResult
        if getuid() == 0 {
            result = try Command.run("/usr/bin/unshare", ["--net", cloudInit, "schema", "--config-file", file.path], timeout: .seconds(60))
        } else {
            result = try Command.run(cloudInit, ["schema", "--config-file", file.path], timeout: .seconds(60))
        }
        XCTAssertFalse(result.timedOut, "cloud-init schema timed out")
        return result
    }

    func testTheExampleIsValidCloudConfig() throws {
        let valid = try self.schema(self.example)
        XCTAssertEqual(valid.status, 0, valid.output)
        XCTAssertTrue(valid.stdout.contains("Valid cloud-config"), valid.output)

        // The same check refuses a broken copy: it can fail.
        let text = try String(contentsOf: self.example, encoding: .utf8)
        XCTAssertTrue(text.contains(#"permissions: "0644""#))
        let broken = FileManager.default.temporaryDirectory.appendingPathComponent("cloud-init-broken-\(getpid()).yaml")
        defer { try? FileManager.default.removeItem(at: broken) }
        try Data(text.replacingOccurrences(of: #"permissions: "0644""#, with: "permissions: 0644").utf8).write(to: broken)
        let refused = try self.schema(broken)
        XCTAssertNotEqual(refused.status, 0, refused.output)
        XCTAssertTrue(refused.output.contains("permissions"), refused.output)
    }

    func testItsMeshJSONLoadsAndDeclaresItsNode() throws {
        _ = try self.cloudInit()  // its python3-yaml reads the file
        let files = try self.writtenFiles()
        let json = try XCTUnwrap(files["/etc/meshd/mesh.json"], "the example writes /etc/meshd/mesh.json")
        let config = try MeshConfiguration.parse(
            Data(json.utf8),
            file: "examples/ec2/cloud-init.yaml: /etc/meshd/mesh.json",
            directory: "/etc/meshd"
        )
        XCTAssertEqual(config.tlsFiles(for: "db1").key, "/etc/meshd/pki/db1.key", "the paths the node bundle fills")
        XCTAssertEqual(config.tlsFiles(for: "db1").ca, "/etc/meshd/pki/ca.pem")
        XCTAssertEqual(config.tlsFiles(for: "db1").crl, "/etc/meshd/pki/crl.pem")
        let env = try XCTUnwrap(files["/etc/meshd/meshd.env"], "the example writes /etc/meshd/meshd.env")
        let node = try XCTUnwrap(env.split(separator: "\n").first { $0.hasPrefix("MESHD_NODE=") }?.dropFirst("MESHD_NODE=".count))
        XCTAssertNotNil(config.nodes[String(node)], "MESHD_NODE=\(node) is declared in the mesh.json")
    }

    /// write_files, path -> content, read by Python's YAML parser (the one cloud-init uses).
    private func writtenFiles() throws -> [String: String] {
        let script = """
            import json, sys, yaml
            data = yaml.safe_load(open(sys.argv[1]))
            print(json.dumps({f["path"]: f["content"] for f in data["write_files"]}))
            """
        let result = try Command.run("/usr/bin/python3", ["-c", script, self.example.path], timeout: .seconds(30))
        XCTAssertEqual(result.status, 0, result.output)
        return try JSONDecoder().decode([String: String].self, from: Data(result.stdout.utf8))
    }
}
