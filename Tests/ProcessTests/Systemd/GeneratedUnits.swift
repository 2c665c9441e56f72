import Foundation
import MeshTestSupport
import XCTest

/// One unit as `meshctl units` printed it, and the values of its `KEY=VALUE` lines.
struct GeneratedUnit: Equatable {
    var fileName: String
    var text: String

    func values(_ key: String) -> [String] {
        self.text.split(separator: "\n").filter { $0.hasPrefix(key + "=") }.map { String($0.dropFirst(key.count + 1)) }
    }

    func value(_ key: String) -> String? {
        let all = self.values(key)
        return all.count == 1 ? all[0] : nil
    }
}

/// Runs the built `meshctl units` and reads what it prints, for the unit-file and generator tests.
enum GeneratedUnits {
    /// A same-address mesh like examples/patroni's: `<service>@<node>` listeners (with `-` and `@`
    /// in their names), a Unix-socket forward whose name starts with a dot after `forward-`, and a
    /// forward on a host name (no unit: systemd cannot bind a name).
    static let sameAddressConfig = """
        {
          "mesh": "sa",
          "tls": { "ca": "pki/ca.pem", "cert": "pki/{node}.pem", "key": "pki/{node}.key" },
          "nodes": {
            "db1": { "address": "127.0.1.1:7443" },
            "db2": { "address": "127.0.1.2:7443" },
            "app1": { "address": "127.0.1.3:7443" }
          },
          "services": {
            "etcd-peer": { "on": { "db1": "127.0.1.1:2380", "db2": "127.0.1.2:2380" }, "allow": ["db1", "db2"], "same_address": true },
            "patroni-api": { "on": { "db1": "127.0.1.1:8008", "db2": "127.0.1.2:8008" }, "allow": ["db1", "db2", "app1"], "same_address": true },
            "postgres": { "on": { "db1": "127.0.0.1:5432", "db2": "127.0.0.1:5433" }, "allow": ["app1"] }
          },
          "forwards": [
            { "on": "app1", "listen": "unix:/run/tunnelmesh-test/.s.PGSQL.5432", "to": "postgres@db1" },
            { "on": "app1", "listen": "localhost:15010", "to": "postgres@db2" }
          ]
        }
        """

    /// An environment with nothing of the machine's: no MESHD_* variables, and an EnvironmentFile
    /// path that does not exist unless a test writes it.
    static func environment(_ extra: [String: String] = [:], envFile: String) -> [String: String] {
        var environment = ["PATH": "/usr/bin:/bin", "MESHD_ENV_FILE": envFile]
        for (key, value) in extra { environment[key] = value }
        return environment
    }

    /// The units in `meshctl units` output: each starts at a `# <name>.socket` line.
    static func parse(_ output: String) -> [GeneratedUnit] {
        var units: [GeneratedUnit] = []
        for line in output.split(separator: "\n", omittingEmptySubsequences: false) {
            if line.hasPrefix("# meshd"), line.hasSuffix(".socket"), !line.dropFirst(2).contains(" ") {
                units.append(GeneratedUnit(fileName: String(line.dropFirst(2)), text: ""))
            } else if !units.isEmpty {
                units[units.count - 1].text += line + "\n"
            }
        }
        // Units are separated by one blank line, which belongs to none of them.
        for index in units.indices where units[index].text.hasSuffix("\n\n") {
            units[index].text.removeLast()
        }
        return units
    }

    /// `meshctl units --node NODE --config CONFIG`, which must succeed.
    static func render(node: String, config: String, file: StaticString = #filePath, line: UInt = #line) throws -> [GeneratedUnit] {
        let scratch = try TemporaryDirectory.make()
        defer { try? FileManager.default.removeItem(atPath: scratch) }
        let result = try Command.run(
            BuildProducts.meshctl.path,
            ["units", "--node", node, "--config", config],
            environment: self.environment(envFile: scratch + "/absent.env"),
            timeout: .seconds(30)
        )
        XCTAssertEqual(result.status, 0, result.output, file: file, line: line)
        return self.parse(result.stdout)
    }

    /// The node names of a mesh.json, read with JSONSerialization (not with the code under test).
    static func nodes(of config: URL) throws -> [String] {
        let json = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(contentsOf: config)) as? [String: Any])
        return try XCTUnwrap(json["nodes"] as? [String: Any]).keys.sorted()
    }
}
