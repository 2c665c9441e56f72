import Foundation
import MeshTestSupport
import XCTest

/// `meshctl units` and units/meshd-generator as systemd would run them: which node and config they
/// pick (flags, environment, meshd.env), what they write, and what they refuse.
final class UnitsCommandTests: XCTestCase {
    private var directory: String!
    /// The EnvironmentFile the commands read (absent unless a test writes it).
    private var envFile: String { self.directory + "/meshd.env" }

    override func setUpWithError() throws {
        try super.setUpWithError()
        for binary in [BuildProducts.meshd, BuildProducts.meshctl] {
            guard FileManager.default.isExecutableFile(atPath: binary.path) else {
                throw XCTSkip("missing \(binary.path): build the products first (swift build --build-tests)")
            }
        }
        self.directory = try TemporaryDirectory.make()
    }

    override func tearDown() {
        if let directory { try? FileManager.default.removeItem(atPath: directory) }
        super.tearDown()
    }

    private func units(_ arguments: [String], _ environment: [String: String] = [:]) throws -> CommandResult {
        try Command.run(
            BuildProducts.meshctl.path,
            ["units"] + arguments,
            environment: GeneratedUnits.environment(environment, envFile: self.envFile),
            timeout: .seconds(30)
        )
    }

    /// units/meshd-generator with `dirs`, running the built meshctl.
    private func generator(_ dirs: [String], _ environment: [String: String]) throws -> CommandResult {
        var environment = environment
        environment["MESHD_GENERATOR_MESHCTL"] = BuildProducts.meshctl.path
        return try Command.run(
            "/bin/sh",
            [RepositoryFiles.generator.path] + dirs,
            environment: GeneratedUnits.environment(environment, envFile: self.envFile),
            timeout: .seconds(30)
        )
    }

    private func makeDirectories(_ names: [String]) throws -> [String] {
        try names.map { name in
            let path = self.directory + "/" + name
            try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
            return path
        }
    }

    private func write(_ text: String, to name: String) throws -> String {
        let path = self.directory + "/" + name
        try Data(text.utf8).write(to: URL(fileURLWithPath: path))
        return path
    }

    private func contents(_ directory: String) throws -> [String] {
        try FileManager.default.contentsOfDirectory(atPath: directory).sorted()
    }

    /// The tunnel listener's address in the printed units: which node they were made for.
    private func meshAddress(_ result: CommandResult, file: StaticString = #filePath, line: UInt = #line) -> String? {
        XCTAssertEqual(result.status, 0, result.output, file: file, line: line)
        return GeneratedUnits.parse(result.stdout).first { $0.fileName == "meshd.socket" }?.value("ListenStream")
    }

    func testNodeAndConfigComeFromFlagsThenEnvironmentThenMeshdEnv() throws {
        let config = RepositoryFiles.exampleConfig.path
        let elsewhere = try self.write(
            try String(contentsOfFile: config, encoding: .utf8).replacingOccurrences(of: "127.0.1.1:7443", with: "127.0.9.1:7443"),
            to: "elsewhere.json"
        )
        // --node and --config beat MESHD_NODE and MESHD_CONFIG, which beat meshd.env.
        try "MESHD_NODE=db2\n".write(toFile: self.envFile, atomically: true, encoding: .utf8)
        XCTAssertEqual(self.meshAddress(try self.units(["--config", config])), "127.0.1.2:7443")
        XCTAssertEqual(self.meshAddress(try self.units(["--config", config], ["MESHD_NODE": "db1"])), "127.0.1.1:7443")
        XCTAssertEqual(self.meshAddress(try self.units(["--config", config, "--node", "app1"], ["MESHD_NODE": "db1"])), "127.0.1.3:7443")
        XCTAssertEqual(self.meshAddress(try self.units([], ["MESHD_NODE": "db1", "MESHD_CONFIG": elsewhere])), "127.0.9.1:7443")
        XCTAssertEqual(
            self.meshAddress(try self.units(["--config", config], ["MESHD_NODE": "db1", "MESHD_CONFIG": elsewhere])),
            "127.0.1.1:7443"
        )
        // With no config named anywhere, the default /etc/meshd/mesh.json is the one read.
        let absent = try self.units([], ["MESHD_NODE": "db1"])
        if !FileManager.default.fileExists(atPath: "/etc/meshd/mesh.json") {
            XCTAssertEqual(absent.status, 2, absent.output)
            XCTAssertTrue(absent.stderr.contains("/etc/meshd/mesh.json: cannot read the configuration file"), absent.stderr)
        }

        // meshd.env as systemd reads an EnvironmentFile: comments, quotes, blanks, continuations.
        let files: [(text: String, address: String)] = [
            ("# this node\n; also a comment\n\nMESHD_NODE=\"db1\"\n", "127.0.1.1:7443"),
            ("MESHD_NODE='app1'   \nOTHER=\"a \\\"quoted\\\" word\"\n", "127.0.1.3:7443"),
            ("  MESHD_NODE = db2   \n", "127.0.1.2:7443"),
            ("MESHD_NODE=db9\nMESHD_NODE=d\\\nb1\n", "127.0.1.1:7443"),
            ("MESHD_OPTS=\"--log-level debug --node app1\"\n", "127.0.1.3:7443"),
            ("MESHD_OPTS=--node=db2\nMESHD_NODE=db2", "127.0.1.2:7443"),
        ]
        for file in files {
            try file.text.write(toFile: self.envFile, atomically: true, encoding: .utf8)
            XCTAssertEqual(self.meshAddress(try self.units(["--config", config])), file.address, file.text)
        }

        // What systemd would only skip is an error here, naming the file and line.
        let bad: [(text: String, message: String)] = [
            ("MESHD_NODE=db1\nMESHD_OPTS=\"--node db2\"\n", "\(self.envFile): MESHD_NODE=db1 but MESHD_OPTS says --node db2"),
            ("# comment\nMESHD_NODE db1\n", "\(self.envFile):2: expected KEY=VALUE"),
            ("MESHD_NODE=\"db1\n", "\(self.envFile):1: the value of MESHD_NODE has no closing quote"),
            ("1NODE=db1\n", "\(self.envFile):1: \"1NODE\" is not a variable name"),
        ]
        for file in bad {
            try file.text.write(toFile: self.envFile, atomically: true, encoding: .utf8)
            let result = try self.units(["--config", config])
            XCTAssertEqual(result.status, 2, result.output)
            XCTAssertTrue(result.stderr.hasPrefix("meshctl: \(file.message)"), "\(file.text): \(result.stderr)")
            XCTAssertEqual(result.stdout, "")
        }
    }

    /// systemd's calling convention: three directories, units and wants links in the first.
    func testGeneratorScriptWritesTheUnitsAndTheirWantsLinks() throws {
        let config = RepositoryFiles.exampleConfig.path
        let printed = try GeneratedUnits.render(node: "app1", config: config)
        XCTAssertEqual(printed.count, 6)
        let dirs = try self.makeDirectories(["normal", "early", "late"])
        try "MESHD_NODE=app1\n".write(toFile: self.envFile, atomically: true, encoding: .utf8)
        let result = try self.generator(dirs, ["MESHD_CONFIG": config])
        XCTAssertEqual(result.status, 0, result.output)
        XCTAssertEqual(result.output, "", "a generator that worked says nothing")

        let names = printed.map(\.fileName).sorted()
        XCTAssertEqual(try self.contents(dirs[0]), (names + ["meshd.service.wants", "sockets.target.wants"]).sorted())
        for unit in printed {
            XCTAssertEqual(try String(contentsOfFile: dirs[0] + "/" + unit.fileName, encoding: .utf8), unit.text, unit.fileName)
            let attributes = try FileManager.default.attributesOfItem(atPath: dirs[0] + "/" + unit.fileName)
            XCTAssertEqual((attributes[.posixPermissions] as? NSNumber)?.intValue, 0o644)
        }
        for wants in ["sockets.target.wants", "meshd.service.wants"] {
            let links = dirs[0] + "/" + wants
            XCTAssertEqual(try self.contents(links), names)
            for name in names {
                XCTAssertEqual(try FileManager.default.destinationOfSymbolicLink(atPath: links + "/" + name), "../" + name)
            }
        }
        XCTAssertEqual(try self.contents(dirs[1]), [])
        XCTAssertEqual(try self.contents(dirs[2]), [])

        // One directory (systemd.generator(7): "for tests") works the same; two is a usage error.
        let one = try self.makeDirectories(["one"])
        XCTAssertEqual(try self.generator(one, ["MESHD_CONFIG": config]).status, 0)
        XCTAssertEqual(try self.contents(one[0]), try self.contents(dirs[0]))
        let two = try self.generator([dirs[1], dirs[2]], ["MESHD_CONFIG": config])
        XCTAssertEqual(two.status, 2, two.output)
        XCTAssertTrue(two.stderr.contains("--generator takes one or three directories"), two.stderr)
    }

    /// A bad mesh.json: the generator and `meshctl units` print the error meshd prints for the same
    /// file, write nothing, and fail.
    func testBadConfigGivesMeshdsErrorAndWritesNothing() throws {
        let example = try String(contentsOf: RepositoryFiles.exampleConfig, encoding: .utf8)
        let cases: [(name: String, text: String, node: String, expect: String)] = [
            ("syntax.json", String(example.prefix(200)), "db1", "syntax.json"),
            ("unknown-key.json", example.replacingOccurrences(of: "\"tunnel\":", with: "\"tunel\":"), "db1", "tunel: unknown key"),
            ("no-such-node.json", example, "db9", "no node \"db9\" (declared: app1, db1, db2)"),
            ("clash.json", example.replacingOccurrences(of: "127.0.0.1:6433", with: "127.0.0.1:6432"), "app1", "127.0.0.1:6432"),
        ]
        for bad in cases {
            let path = try self.write(bad.text, to: bad.name)
            let meshd = try Command.run(
                BuildProducts.meshd.path,
                ["--config", path],
                environment: ["PATH": "/usr/bin:/bin", "MESHD_NODE": bad.node],
                timeout: .seconds(30)
            )
            XCTAssertEqual(meshd.status, 2, meshd.output)
            let meshdError = try XCTUnwrap(meshd.stderr.split(separator: "\n").last.map(String.init), meshd.output)
            XCTAssertTrue(meshdError.hasPrefix("meshd: "), meshdError)
            let error = String(meshdError.dropFirst("meshd: ".count))
            XCTAssertTrue(error.contains(bad.expect), "\(bad.name): \(error)")

            let dirs = try self.makeDirectories(["\(bad.name)-normal", "\(bad.name)-early", "\(bad.name)-late"])
            let generated = try self.generator(dirs, ["MESHD_CONFIG": path, "MESHD_NODE": bad.node])
            XCTAssertEqual(generated.status, 2, generated.output)
            XCTAssertEqual(generated.stderr, "meshd-generator: \(error)\n", bad.name)
            for dir in dirs { XCTAssertEqual(try self.contents(dir), [], "\(bad.name): nothing written") }

            let printed = try self.units(["--config", path, "--node", bad.node])
            XCTAssertEqual(printed.status, 2, printed.output)
            XCTAssertEqual(printed.stderr, "meshctl: \(error)\n", bad.name)
            XCTAssertEqual(printed.stdout, "")
        }

        // A config meshd accepts but no unit file can carry (a newline in a socket path): the
        // units before it were rendered, yet none is written.
        let newline = example.replacingOccurrences(
            of: "\"listen\": \"127.0.0.1:15002\"",
            with: "\"listen\": \"unix:/run/tunnel\\nmesh/ab.sock\""
        )
        let path = try self.write(newline, to: "newline.json")
        let dirs = try self.makeDirectories(["newline"])
        let generated = try self.generator(dirs, ["MESHD_CONFIG": path, "MESHD_NODE": "app1"])
        XCTAssertEqual(generated.status, 2, generated.output)
        XCTAssertTrue(
            generated.stderr.contains("forwards[2].listen: \"/run/tunnel\\nmesh/ab.sock\" cannot be written into a unit file"),
            generated.stderr
        )
        XCTAssertEqual(try self.contents(dirs[0]), [])
    }

    /// A machine not yet told which node it is (tls.cert has {node}, nothing names the node): the
    /// generator writes nothing and succeeds with one line; `meshctl units` asks for a name.
    func testNoNodeNameWritesNothingAndSucceeds() throws {
        let config = RepositoryFiles.exampleConfig.path
        for envFile in [nil, "# MESHD_NODE=\n#MESHD_OPTS=\"--node db1\"\nMESHD_OPTS=\"--log-level debug\"\n"] {
            if let envFile { try envFile.write(toFile: self.envFile, atomically: true, encoding: .utf8) }
            let dirs = try self.makeDirectories(["unnamed-\(envFile == nil ? "absent" : "comments")"])
            let result = try self.generator(dirs, ["MESHD_CONFIG": config, "MESHD_NODE": ""])
            XCTAssertEqual(result.status, 0, result.output)
            XCTAssertEqual(result.stdout, "")
            let lines = result.stderr.split(separator: "\n")
            XCTAssertEqual(lines.count, 1, result.stderr)
            XCTAssertTrue(lines.first?.hasPrefix("meshd-generator: no node name") ?? false, result.stderr)
            XCTAssertTrue(result.stderr.contains("MESHD_NODE=NAME in \(self.envFile)"), result.stderr)
            XCTAssertEqual(try self.contents(dirs[0]), [])

            let printed = try self.units(["--config", config])
            XCTAssertEqual(printed.status, 2, printed.output)
            XCTAssertTrue(printed.stderr.hasPrefix("meshctl: no node name"), printed.stderr)
        }
    }

    /// Same-address listeners are named `<service>@<node>`: their units escape `@` as
    /// `systemd-escape` does (so no unit is a template instance), keeping `-`; a listener on a host
    /// name gets no unit and a note.
    func testSameAddressUnitNamesAreEscapedLikeSystemdEscape() throws {
        let escape = "/usr/bin/systemd-escape"
        guard FileManager.default.isExecutableFile(atPath: escape) else {
            throw XCTSkip("\(escape) is missing: install Debian's systemd package (scripts/test.sh does)")
        }
        let config = try self.write(GeneratedUnits.sameAddressConfig, to: "same-address.json")
        let json = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(GeneratedUnits.sameAddressConfig.utf8)) as? [String: Any])
        let services = try XCTUnwrap(json["services"] as? [String: [String: Any]])
        var escaped = 0
        for node in try GeneratedUnits.nodes(of: URL(fileURLWithPath: config)) {
            let result = try self.units(["--config", config, "--node", node])
            XCTAssertEqual(result.status, 0, result.output)
            let units = GeneratedUnits.parse(result.stdout)

            // The same-address listeners mesh.json gives this node, computed from the JSON.
            var expected: [String: String] = [:]
            for (name, service) in services where service["same_address"] as? Bool == true {
                guard let allow = service["allow"] as? [String], allow.contains(node) else { continue }
                for (member, address) in try XCTUnwrap(service["on"] as? [String: String]) where member != node {
                    expected["\(name)@\(member)"] = address
                }
            }
            XCTAssertFalse(expected.isEmpty, node)
            for (name, address) in expected {
                let systemd = try Command.run(escape, [name], timeout: .seconds(10))
                XCTAssertEqual(systemd.status, 0, systemd.output)
                let fileName =
                    "meshd-" + systemd.stdout.trimmingCharacters(in: .newlines).replacingOccurrences(of: "\\x2d", with: "-") + ".socket"
                XCTAssertFalse(fileName.contains("@"), fileName)
                let unit = try XCTUnwrap(units.first { $0.fileName == fileName }, "\(node): no \(fileName) in\n\(result.stdout)")
                XCTAssertEqual(unit.value("FileDescriptorName"), name)
                XCTAssertEqual(unit.value("ListenStream"), address)
                XCTAssertEqual(unit.value("PartOf"), "meshd.socket")
                escaped += 1
            }
            if node == "app1" {
                let unix = try XCTUnwrap(units.first { $0.value("FileDescriptorName") == "forward-.s.PGSQL.5432" }, result.stdout)
                XCTAssertEqual(unix.fileName, "meshd-forward-.s.PGSQL.5432.socket")
                XCTAssertEqual(unix.value("ListenStream"), "/run/tunnelmesh-test/.s.PGSQL.5432")
                XCTAssertNil(units.first { $0.value("FileDescriptorName") == "forward-15010" })
                XCTAssertTrue(
                    result.stderr.contains("meshctl: note: \(config): forwards[1].listen: localhost:15010 is a host name"),
                    result.stderr
                )
            } else {
                XCTAssertEqual(result.stderr, "")
            }
        }
        XCTAssertEqual(escaped, 6, "db1: etcd-peer@db2, patroni-api@db2; db2: the same of db1; app1: patroni-api@db1 and @db2")
    }

    /// meshd without --node takes MESHD_NODE (meshd.service gets it from meshd.env); --node wins.
    /// (GeneratedSocketsTests runs a meshd named only by MESHD_NODE.)
    func testMeshdTakesItsNodeFromMESHD_NODE() throws {
        // The example config in a directory with no pki/, so a named node fails at its CA file.
        let config = try self.write(try String(contentsOf: RepositoryFiles.exampleConfig, encoding: .utf8), to: "mesh.json")
        func meshd(_ arguments: [String], _ environment: [String: String]) throws -> String {
            let result = try Command.run(
                BuildProducts.meshd.path,
                ["--config", config] + arguments,
                environment: ["PATH": "/usr/bin:/bin"].merging(environment) { $1 },
                timeout: .seconds(30)
            )
            XCTAssertEqual(result.status, 2, result.output)
            return result.stderr
        }
        XCTAssertTrue(try meshd([], [:]).contains("tls.cert contains {node}, so meshd needs --node NAME or MESHD_NODE=NAME"))
        XCTAssertTrue(try meshd([], ["MESHD_NODE": ""]).contains("needs --node NAME or MESHD_NODE=NAME"))
        XCTAssertTrue(try meshd([], ["MESHD_NODE": "db9"]).contains("no node \"db9\" (declared: app1, db1, db2)"))
        XCTAssertTrue(try meshd([], ["MESHD_NODE": "db2"]).contains("\(self.directory!)/pki/ca.pem"))
        XCTAssertTrue(try meshd(["--node", "db9"], ["MESHD_NODE": "db2"]).contains("no node \"db9\""))
    }
}
