import Foundation
import MeshTestSupport
import XCTest

/// `meshctl check` on real files made by `meshctl pki`: a good mesh passes with exit 0; a broken
/// mesh.json, a key of another node, an expired certificate, a revoked one and a certificate from
/// another CA each exit 2 with the file (and JSON path) in the message.
final class CheckCommandTests: XCTestCase {
    private var directory: String!
    private var meshctl: String!
    private var pki: String { self.directory + "/pki" }
    private var config: String { self.directory + "/mesh.json" }

    override func setUp() async throws {
        self.directory = try TemporaryDirectory.make()
        self.meshctl = try BuildProducts.path("meshctl")
        try Command.check(self.meshctl, ["pki", "init", "--mesh", "demo", "--dir", self.pki])
        for node in ["db1", "db2", "app1"] { try Command.check(self.meshctl, ["pki", "issue", node, "--dir", self.pki]) }
        try self.writeConfig(Self.meshJSON)
    }

    override func tearDown() async throws {
        if let directory { try? FileManager.default.removeItem(atPath: directory) }
    }

    static let meshJSON = """
        {
          "mesh": "demo",
          "tls": { "ca": "pki/ca.pem", "cert": "pki/{node}.pem", "key": "pki/{node}.key", "crl": "pki/crl.pem" },
          "nodes": {
            "db1":  { "address": "127.0.46.1:7443", "control": "run/db1.sock" },
            "db2":  { "address": "127.0.46.2:7443", "control": "run/db2.sock" },
            "app1": { "address": "127.0.46.3:7443", "control": "run/app1.sock" }
          },
          "services": { "postgres": { "on": { "db1": "127.0.0.1:5432" }, "allow": ["app1"] } },
          "forwards": [ { "on": "app1", "listen": "127.0.0.1:15432", "to": "postgres@db1" } ]
        }
        """

    private func writeConfig(_ text: String) throws {
        try Data(text.utf8).write(to: URL(fileURLWithPath: self.config))
    }

    private func check(_ arguments: [String]) throws -> CommandResult {
        try Command.run(self.meshctl, ["check"] + arguments, environment: [:])
    }

    /// The findings of `check --json`, decoded generically (the JSON is the stable interface).
    private func findings(_ arguments: [String]) throws -> (status: Int32, report: [String: Any], findings: [[String: Any]]) {
        let run = try self.check(arguments + ["--json"])
        let object = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(run.stdout.utf8)) as? [String: Any], run.stdout + run.stderr)
        return (run.status, object, try XCTUnwrap(object["findings"] as? [[String: Any]]))
    }

    private func errorLines(_ result: CommandResult) -> [String] {
        result.stdout.split(separator: "\n").map(String.init).filter { $0.hasPrefix("error: ") }
    }

    func testGoodMeshPassesForOneNodeAndForAll() throws {
        let one = try self.check([self.config, "--node", "db1"])
        XCTAssertEqual(one.status, 0, one.stdout + one.stderr)
        let lines = one.stdout.split(separator: "\n").map(String.init)
        XCTAssertEqual(lines.count, 5, one.stdout)
        XCTAssertEqual(lines[0], "ok: \(self.config): mesh \"demo\", 3 nodes, 1 service, 1 forward")
        XCTAssertTrue(lines[1].hasPrefix("ok: \(self.pki)/ca.pem: CA CN=tunnelmesh demo CA, valid until "), lines[1])
        XCTAssertTrue(lines[2].hasPrefix("ok: \(self.pki)/crl.pem: CRL #1 signed by the CA, 0 revoked certificates"), lines[2])
        XCTAssertTrue(
            lines[3].hasPrefix(
                "ok: \(self.pki)/db1.pem: db1: chains to \(self.pki)/ca.pem, identity spiffe://demo/node/db1, key \(self.pki)/db1.key matches, not revoked, valid until "
            ),
            lines[3]
        )
        XCTAssertEqual(lines[4], "meshctl check: 0 errors, 0 warnings (1 node checked: db1)")

        // Without --node: every declared node whose certificate exists; the path from --config.
        let all = try self.findings(["--config", self.config])
        XCTAssertEqual(all.status, 0)
        XCTAssertEqual(all.report["ok"] as? Bool, true)
        XCTAssertEqual(all.report["errors"] as? Int, 0)
        XCTAssertEqual(all.report["nodes"] as? [String], ["app1", "db1", "db2"])
        XCTAssertEqual(all.findings.count, 6)
        XCTAssertTrue(all.findings.allSatisfy { $0["severity"] as? String == "ok" })
        XCTAssertEqual(all.findings.compactMap { $0["node"] as? String }, ["app1", "db1", "db2"])
    }

    func testBrokenConfigNamesTheFileAndJSONPath() throws {
        try self.writeConfig(Self.meshJSON.replacingOccurrences(of: "\"to\": \"postgres@db1\"", with: "\"to\": \"postgres@db9\""))
        let result = try self.check([self.config])
        XCTAssertEqual(result.status, 2, result.stdout + result.stderr)
        let errors = self.errorLines(result)
        XCTAssertEqual(errors.count, 1, result.stdout)
        XCTAssertTrue(errors[0].hasPrefix("error: \(self.config): forwards[0].to: "), errors[0])
        XCTAssertTrue(errors[0].contains("db9"), errors[0])

        let json = try self.findings([self.config])
        XCTAssertEqual(json.status, 2)
        XCTAssertEqual(json.findings.first?["json_path"] as? String, "forwards[0].to")
        XCTAssertEqual(json.findings.first?["file"] as? String, self.config)

        try self.writeConfig("{ \"mesh\": \"demo\", ")
        let truncated = try self.check([self.config])
        XCTAssertEqual(truncated.status, 2)
        XCTAssertTrue(self.errorLines(truncated).first?.hasPrefix("error: \(self.config): ") ?? false, truncated.stdout)
    }

    func testKeyOfAnotherNodeIsAnError() throws {
        try FileManager.default.removeItem(atPath: self.pki + "/db2.key")
        try FileManager.default.copyItem(atPath: self.pki + "/db1.key", toPath: self.pki + "/db2.key")
        let result = try self.check([self.config, "--node", "db2"])
        XCTAssertEqual(result.status, 2, result.stdout)
        XCTAssertEqual(
            self.errorLines(result),
            [
                "error: \(self.pki)/db2.key: db2: this key does not match the certificate \(self.pki)/db2.pem — pair each certificate with the key it was issued for, or issue both anew with 'meshctl pki issue db2 --dir DIR --force'"
            ]
        )
        let db1 = try self.check([self.config, "--node", "db1"])
        XCTAssertEqual(db1.status, 0, "db1's own pair is fine: \(db1.stdout)")
    }

    /// A balancer's front-door certificate is checked on the nodes it runs on: the node's own
    /// certificate and key serve as a usable pair; a missing file is an error naming the JSON path.
    func testBalancerTLSFilesAreChecked() throws {
        let balanced = Self.meshJSON.replacingOccurrences(
            of: #""forwards": ["#,
            with:
                #""balancers": { "pg": { "service": "postgres", "on": { "app1": { "rw": "127.0.0.1:6432" } }, "tls": { "cert": "pki/{node}.pem", "key": "pki/{node}.key" } } }, "forwards": ["#
        )
        XCTAssertNotEqual(balanced, Self.meshJSON)
        try self.writeConfig(balanced.replacingOccurrences(of: #""allow": ["app1"] }"#, with: #""allow": ["app1"], "postgres": {} }"#))
        let good = try self.check([self.config, "--node", "app1"])
        XCTAssertEqual(good.status, 0, good.stdout)
        XCTAssertTrue(good.stdout.contains("balancer pg: front-door certificate and key load"), good.stdout)
        try FileManager.default.removeItem(atPath: self.pki + "/app1.pem")
        let missing = try self.findings([self.config, "--node", "app1"])
        XCTAssertEqual(missing.status, 2)
        XCTAssertTrue(missing.findings.contains { ($0["json_path"] as? String) == "balancers.pg.tls" }, "\(missing.findings)")
    }

    func testExpiredCertificateIsAnError() throws {
        try Command.check(
            self.meshctl,
            ["pki", "issue", "app1", "--dir", self.pki, "--force", "--not-before", "2024-01-01", "--days", "30"]
        )
        let result = try self.check([self.config])
        XCTAssertEqual(result.status, 2, result.stdout)
        XCTAssertEqual(
            self.errorLines(result),
            [
                "error: \(self.pki)/app1.pem: app1: the certificate expired on 2024-01-31 00:00:00 UTC — renew it with 'meshctl pki issue app1 --dir DIR --force'"
            ]
        )
        XCTAssertTrue(result.stdout.contains("meshctl check: 1 error, 0 warnings (3 nodes checked: app1, db1, db2)"), result.stdout)
    }

    func testExpiringSoonIsAWarningOnly() throws {
        try Command.check(self.meshctl, ["pki", "issue", "app1", "--dir", self.pki, "--force", "--days", "5"])
        let result = try self.check([self.config, "--node", "app1"])
        XCTAssertEqual(result.status, 0, result.stdout)
        let warnings = result.stdout.split(separator: "\n").filter { $0.hasPrefix("warning: ") }
        XCTAssertEqual(warnings.count, 1, result.stdout)
        XCTAssertTrue(warnings[0].hasPrefix("warning: \(self.pki)/app1.pem: app1: the certificate expires on "), String(warnings[0]))
        XCTAssertTrue(warnings[0].contains("(4 days left)"), String(warnings[0]))
    }

    func testRevokedCertificateIsAnError() throws {
        try Command.check(self.meshctl, ["pki", "revoke", "db2", "--dir", self.pki])
        let serial = try XCTUnwrap(
            try Command.check("/usr/bin/openssl", ["x509", "-in", self.pki + "/db2.pem", "-noout", "-serial"])
                .split(separator: "=").last?.trimmingCharacters(in: .whitespacesAndNewlines)
        )
        let result = try self.check([self.config, "--node", "db2"])
        XCTAssertEqual(result.status, 2, result.stdout)
        XCTAssertEqual(
            self.errorLines(result),
            [
                "error: \(self.pki)/db2.pem: db2: revoked by \(self.pki)/crl.pem (serial \(serial)); peers refuse it — issue a new certificate with 'meshctl pki issue db2 --dir DIR --force' and reload meshd"
            ]
        )
        XCTAssertEqual(try self.check([self.config, "--node", "db1"]).status, 0, "db1 is not revoked")
    }

    func testCertificateFromAnotherCAIsAnError() throws {
        let other = self.directory + "/other"
        try Command.check(self.meshctl, ["pki", "init", "--mesh", "demo", "--dir", other])
        try Command.check(self.meshctl, ["pki", "issue", "db1", "--dir", other])
        for file in ["db1.pem", "db1.key"] {
            try FileManager.default.removeItem(atPath: self.pki + "/" + file)
            try FileManager.default.copyItem(atPath: other + "/" + file, toPath: self.pki + "/" + file)
        }
        let result = try self.check([self.config, "--node", "db1"])
        XCTAssertEqual(result.status, 2, result.stdout)
        XCTAssertEqual(
            self.errorLines(result),
            [
                "error: \(self.pki)/db1.pem: db1: does not verify against the CA \(self.pki)/ca.pem for dialing peers (TLS client): unable to get local issuer certificate — issue it from this mesh's CA with 'meshctl pki issue db1 --dir DIR --force'"
            ]
        )
    }

    func testUsageErrorsExit2() throws {
        let unknown = try self.check([self.config, "--node", "db9"])
        XCTAssertEqual(unknown.status, 2)
        XCTAssertTrue(self.errorLines(unknown).first?.hasPrefix("error: \(self.config): nodes: no node \"db9\"") ?? false, unknown.stdout)
        let twice = try self.check([self.config, "--config", self.directory + "/other.json"])
        XCTAssertEqual(twice.status, 2)
        XCTAssertTrue(twice.stderr.contains("PATH (\(self.config)) and --config"), twice.stderr)
    }
}
