import Foundation
import XCTest

@testable import MeshConfig

/// The founding example mesh.json (the repository's `mesh.json` without its echo service and
/// forwards), and helpers to build variations of it.
enum ConfigFixtures {
    static let designExample = """
        {
          "mesh": "demo",
          "tls": {
            "ca": "pki/ca.pem",
            "cert": "pki/{node}.pem",
            "key": "pki/{node}.key",
            "crl": "pki/crl.pem"
          },
          "tunnel": { "ping_interval": "1s", "dead_after": 3, "backoff_max": "2s" },
          "nodes": {
            "db1":  { "address": "127.0.1.1:7443", "control": "run/db1.sock" },
            "db2":  { "address": "127.0.1.2:7443", "control": "run/db2.sock" },
            "app1": { "address": "127.0.1.3:7443", "control": "run/app1.sock" }
          },
          "services": {
            "postgres": {
              "on": { "db1": "127.0.0.1:55432", "db2": "127.0.0.1:55433" },
              "allow": ["app1"],
              "postgres": { "monitor_user": "meshmon", "database": "postgres", "password_file": null }
            }
          },
          "forwards": [
            { "on": "app1", "listen": "127.0.0.1:15432", "to": "postgres@db1" }
          ],
          "balancers": {
            "pg": {
              "service": "postgres",
              "on": { "app1": { "rw": "127.0.0.1:6432", "ro": "127.0.0.1:6433" } },
              "max_lag": "10s",
              "ro_fallback": "primary"
            }
          }
        }
        """

    static let directory = "/etc/tunnelmesh"

    /// The design example as a mutable JSON tree.
    static func designTree() -> [String: Any] {
        try! JSONSerialization.jsonObject(with: Data(designExample.utf8)) as! [String: Any]
    }

    /// The design example with `edits` applied: each sets (or, with nil, removes) the value at a dotted
    /// path whose numeric components index arrays, e.g. "forwards.0.to".
    static func designTree(with edits: [(String, Any?)]) -> [String: Any] {
        var tree: Any = designTree()
        for (path, value) in edits {
            tree = setting(value, at: path.split(separator: ".").map(String.init)[...], in: tree)
        }
        return tree as! [String: Any]
    }

    private static func setting(_ value: Any?, at path: ArraySlice<String>, in node: Any) -> Any {
        guard let head = path.first else { return value ?? NSNull() }
        let rest = path.dropFirst()
        if var array = node as? [Any], let index = Int(head) {
            if rest.isEmpty, value == nil {
                array.remove(at: index)
            } else if index == array.count {
                array.append(setting(value, at: rest, in: [String: Any]()))
            } else {
                array[index] = setting(value, at: rest, in: array[index])
            }
            return array
        }
        var object = node as? [String: Any] ?? [:]
        if rest.isEmpty, value == nil {
            object[head] = nil
        } else {
            object[head] = setting(value, at: rest, in: object[head] ?? [String: Any]())
        }
        return object
    }

    static func data(_ tree: [String: Any]) -> Data {
        try! JSONSerialization.data(withJSONObject: tree, options: [.sortedKeys])
    }

    static func parse(_ data: Data) throws(ConfigError) -> MeshConfiguration {
        try MeshConfiguration.parse(data, file: "mesh.json", directory: directory)
    }
}

extension XCTestCase {
    /// Asserts that the design example with `edits` applied is rejected with exactly `expected`.
    func assertRejects(
        _ edits: [(String, Any?)],
        with expected: String,
        file: StaticString = #filePath,
        line: UInt = #line
    ) {
        assertRejects(data: ConfigFixtures.data(ConfigFixtures.designTree(with: edits)), with: expected, file: file, line: line)
    }

    /// Asserts that the JSON text `json` is rejected with exactly `expected`.
    func assertRejects(json: String, with expected: String, file: StaticString = #filePath, line: UInt = #line) {
        assertRejects(data: Data(json.utf8), with: expected, file: file, line: line)
    }

    func assertRejects(data: Data, with expected: String, file: StaticString = #filePath, line: UInt = #line) {
        do {
            let configuration = try ConfigFixtures.parse(data)
            XCTFail("expected the error \(expected), but the file loaded (mesh \(configuration.mesh))", file: file, line: line)
        } catch {
            XCTAssertEqual(error.description, expected, file: file, line: line)
        }
    }

    /// Parses the design example with `edits`, failing the test on any error.
    func accepted(
        _ edits: [(String, Any?)],
        file: StaticString = #filePath,
        line: UInt = #line
    ) -> MeshConfiguration? {
        do {
            return try ConfigFixtures.parse(ConfigFixtures.data(ConfigFixtures.designTree(with: edits)))
        } catch {
            XCTFail("unexpected error: \(error)", file: file, line: line)
            return nil
        }
    }
}
