import Foundation
import MeshTestSupport
import XCTest

/// units/meshd.service and the socket units `meshctl units` generates: `systemd-analyze verify` is
/// clean, the service's exposure score is under 2.0, and the socket units name every listener of
/// every node of the top-level mesh.json.
final class UnitFileTests: XCTestCase {
    private var scratch: URL!

    override func setUpWithError() throws {
        try super.setUpWithError()
        guard FileManager.default.isExecutableFile(atPath: "/usr/bin/systemd-analyze") else {
            throw XCTSkip("systemd-analyze is missing: install Debian's systemd package (scripts/test.sh does)")
        }
        self.scratch = FileManager.default.temporaryDirectory.appendingPathComponent("tunnelmesh-units-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: self.scratch, withIntermediateDirectories: true)
    }

    override func tearDown() {
        if let scratch { try? FileManager.default.removeItem(at: scratch) }
        super.tearDown()
    }

    /// A root for `systemd-analyze verify --root`: the host's own unit library (sysinit.target &c.),
    /// the programs the units run (meshd as /usr/local/bin/meshd, /bin/kill), and `units` in
    /// /etc/systemd/system. verify checks that ExecStart= programs exist, which they do not on a
    /// build machine, hence the root.
    private func makeRoot(units: [(name: String, text: String)]) throws -> URL {
        let root = self.scratch.appendingPathComponent("root-\(UUID().uuidString.prefix(6))")
        let fm = FileManager.default
        let unitDir = root.appendingPathComponent("etc/systemd/system")
        try fm.createDirectory(at: unitDir, withIntermediateDirectories: true)
        try fm.createDirectory(at: root.appendingPathComponent("usr/lib/systemd"), withIntermediateDirectories: true)
        try fm.createDirectory(at: root.appendingPathComponent("usr/local/bin"), withIntermediateDirectories: true)
        try fm.createDirectory(at: root.appendingPathComponent("bin"), withIntermediateDirectories: true)
        try fm.copyItem(atPath: "/usr/lib/systemd/system", toPath: root.appendingPathComponent("usr/lib/systemd/system").path)
        try fm.copyItem(atPath: "/bin/kill", toPath: root.appendingPathComponent("bin/kill").path)
        try fm.copyItem(at: BuildProducts.meshd, to: root.appendingPathComponent("usr/local/bin/meshd"))
        for unit in units {
            try Data(unit.text.utf8).write(to: unitDir.appendingPathComponent(unit.name))
        }
        return root
    }

    private func verify(_ units: [(name: String, text: String)]) throws -> CommandResult {
        let root = try self.makeRoot(units: units)
        return try Command.run(
            "/usr/bin/systemd-analyze",
            ["verify", "--root=\(root.path)"] + units.map(\.name),
            directory: root.appendingPathComponent("etc/systemd/system"),
            timeout: .seconds(60)
        )
    }

    private var service: (name: String, text: String) {
        get throws {
            ("meshd.service", try String(contentsOf: RepositoryFiles.units.appendingPathComponent("meshd.service"), encoding: .utf8))
        }
    }

    /// `systemd-analyze verify` on meshd.service with the socket units `meshctl units` generates
    /// for each node of the top-level mesh.json and of a same-address mesh: exit 0, not one warning.
    func testSystemdAnalyzeVerifyIsClean() throws {
        guard FileManager.default.isExecutableFile(atPath: BuildProducts.meshd.path) else {
            throw XCTSkip("missing \(BuildProducts.meshd.path): build the products first")
        }
        let sameAddress = self.scratch.appendingPathComponent("same-address.json")
        try Data(GeneratedUnits.sameAddressConfig.utf8).write(to: sameAddress)
        var verified = 0
        for config in [RepositoryFiles.exampleConfig, sameAddress] {
            for node in try GeneratedUnits.nodes(of: config) {
                let generated = try GeneratedUnits.render(node: node, config: config.path)
                XCTAssertTrue(generated.contains { $0.fileName == "meshd.socket" }, "\(config.lastPathComponent) \(node)")
                let units = [try self.service] + generated.map { ($0.fileName, $0.text) }
                let result = try self.verify(units)
                XCTAssertEqual(result.status, 0, "\(config.lastPathComponent) \(node): \(result.output)")
                XCTAssertEqual(
                    result.output.trimmingCharacters(in: .whitespacesAndNewlines),
                    "",
                    "verify should print nothing for \(config.lastPathComponent) \(node)"
                )
                verified += units.count
            }
        }
        XCTAssertGreaterThan(verified, 12)

        // The same check catches a mistake: a misspelt key in a copy of the service.
        let app1 = try GeneratedUnits.render(node: "app1", config: RepositoryFiles.exampleConfig.path)
        var broken = try self.service
        broken.text = broken.text.replacingOccurrences(of: "WatchdogSec=10s", with: "WatchdogSecs=10s")
        let caught = try self.verify([broken] + app1.map { ($0.fileName, $0.text) })
        XCTAssertTrue(caught.output.contains("WatchdogSecs"), "verify should flag the misspelt key: \(caught.output)")
    }

    /// `systemd-analyze security --offline=true` rates meshd.service below 2.0 (lower is safer).
    func testSecurityExposureIsBelowTwo() throws {
        let service = RepositoryFiles.units.appendingPathComponent("meshd.service")
        let result = try Command.run(
            "/usr/bin/systemd-analyze",
            ["security", "--offline=true", "--threshold=20", service.path],
            timeout: .seconds(60)
        )
        XCTAssertEqual(result.status, 0, "exposure above 2.0 or an error:\n\(result.output)")
        let line = try XCTUnwrap(
            result.output.split(separator: "\n").first { $0.contains("Overall exposure level for meshd.service") },
            result.output
        )
        let score = line.split(separator: ":").last?.split(separator: " ").first.flatMap { Double($0) }
        let level = try XCTUnwrap(score, String(line))
        XCTAssertLessThan(level, 2.0, String(line))
        print("systemd-analyze security meshd.service: \(level)")
    }

    /// For every node of the top-level mesh.json, one generated socket unit per listener, each with
    /// exactly one ListenStream= (the address mesh.json gives the listener) and one
    /// FileDescriptorName= (the listener's name), all triggering meshd.service. systemd gives one
    /// name to every socket of a unit, so two listeners in one unit could not be told apart.
    func testGeneratedSocketUnitsNameEveryListenerOfEveryNode() throws {
        let config = RepositoryFiles.exampleConfig
        let nodes = try GeneratedUnits.nodes(of: config)
        XCTAssertEqual(nodes, ["app1", "db1", "db2"])
        for node in nodes {
            var found: [String: String] = [:]
            for unit in try GeneratedUnits.render(node: node, config: config.path) {
                let listens = unit.values("ListenStream")
                let names = unit.values("FileDescriptorName")
                XCTAssertEqual(listens.count, 1, "\(node) \(unit.fileName): one ListenStream=")
                XCTAssertEqual(names.count, 1, "\(node) \(unit.fileName): one FileDescriptorName=")
                guard let name = names.first, let listen = listens.first else { continue }
                XCTAssertEqual(unit.fileName, name == "mesh" ? "meshd.socket" : "meshd-\(name).socket")
                XCTAssertEqual(unit.value("Service"), "meshd.service", "\(node) \(unit.fileName)")
                XCTAssertEqual(unit.value("NoDelay"), "yes")
                XCTAssertEqual(unit.value("Backlog"), "1024")
                XCTAssertEqual(unit.value("PartOf"), name == "mesh" ? nil : "meshd.socket", "\(node) \(unit.fileName)")
                XCTAssertEqual(unit.value("SourcePath"), config.path)
                XCTAssertTrue(unit.value("Description")?.hasPrefix("tunnelmesh agent socket \(name): ") ?? false, unit.text)
                XCTAssertTrue(
                    unit.text.hasPrefix(
                        "# Generated by `meshctl units` (systemd generator meshd-generator) from \(config.path) for node \(node);"
                    ),
                    unit.text
                )
                XCTAssertTrue(unit.text.contains("Do not edit"), unit.text)
                XCTAssertNil(found[name], "\(node): \(name) named twice")
                found[name] = listen
            }
            XCTAssertEqual(found, try Self.exampleListeners(node: node), node)
        }
    }

    /// The listeners README.md ("Units") names for `node` in the repository's mesh.json.
    static func exampleListeners(node: String) throws -> [String: String] {
        let json = try XCTUnwrap(
            JSONSerialization.jsonObject(with: Data(contentsOf: RepositoryFiles.exampleConfig)) as? [String: Any]
        )
        var listeners: [String: String] = [:]
        let nodes = try XCTUnwrap(json["nodes"] as? [String: [String: Any]])
        listeners["mesh"] = try XCTUnwrap(nodes[node]?["address"] as? String)
        for forward in json["forwards"] as? [[String: Any]] ?? [] where forward["on"] as? String == node {
            let listen = try XCTUnwrap(forward["listen"] as? String)
            listeners["forward-\(listen.split(separator: ":").last!)"] = listen
        }
        for (name, balancer) in json["balancers"] as? [String: [String: Any]] ?? [:] {
            guard let on = (balancer["on"] as? [String: [String: String]])?[node] else { continue }
            if let rw = on["rw"] { listeners["\(name)-rw"] = rw }
            if let ro = on["ro"] { listeners["\(name)-ro"] = ro }
        }
        return listeners
    }
}
