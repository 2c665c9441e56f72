import Foundation
import MeshTestSupport
import XCTest

/// The systemd units in units/: `systemd-analyze verify` is clean, the service's exposure score
/// is under 2.0, and the socket units name every listener of the example node.
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

    private func repositoryUnits() throws -> [(name: String, text: String)] {
        try RepositoryFiles.unitFiles().map { ($0.lastPathComponent, try String(contentsOf: $0, encoding: .utf8)) }
    }

    /// `systemd-analyze verify` on every unit in units/, as they are: exit 0 and not one warning.
    func testSystemdAnalyzeVerifyIsClean() throws {
        guard FileManager.default.isExecutableFile(atPath: BuildProducts.meshd.path) else {
            throw XCTSkip("missing \(BuildProducts.meshd.path): build the products first")
        }
        let units = try self.repositoryUnits()
        XCTAssertTrue(units.contains { $0.name == "meshd.service" } && units.contains { $0.name == "meshd.socket" })
        let result = try self.verify(units)
        XCTAssertEqual(result.status, 0, result.output)
        XCTAssertEqual(result.output.trimmingCharacters(in: .whitespacesAndNewlines), "", "verify should print nothing")

        // The same check catches a mistake: a misspelt key in a copy of the service.
        var broken = units
        let index = broken.firstIndex { $0.name == "meshd.service" }!
        broken[index].text = broken[index].text.replacingOccurrences(of: "WatchdogSec=10s", with: "WatchdogSecs=10s")
        let caught = try self.verify(broken)
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

    /// One socket unit per listener of app1 in the example mesh.json, each with exactly one
    /// ListenStream= (the address mesh.json gives the listener) and one FileDescriptorName= (the
    /// listener's name), all triggering meshd.service. systemd gives one name to every socket of
    /// a unit, so two listeners in one unit could not be told apart.
    func testSocketUnitsNameEveryListenerOfTheExampleNode() throws {
        var found: [String: String] = [:]
        for url in try RepositoryFiles.unitFiles() where url.pathExtension == "socket" {
            let lines = try String(contentsOf: url, encoding: .utf8).split(separator: "\n").map(String.init)
            let listens = lines.filter { $0.hasPrefix("ListenStream=") }.map { String($0.dropFirst("ListenStream=".count)) }
            let names = lines.filter { $0.hasPrefix("FileDescriptorName=") }.map { String($0.dropFirst("FileDescriptorName=".count)) }
            XCTAssertEqual(listens.count, 1, "\(url.lastPathComponent): one ListenStream=")
            XCTAssertEqual(names.count, 1, "\(url.lastPathComponent): one FileDescriptorName=")
            XCTAssertTrue(lines.contains("Service=meshd.service"), "\(url.lastPathComponent) triggers meshd.service")
            if let name = names.first, let listen = listens.first {
                XCTAssertNil(found[name], "\(name) named twice")
                found[name] = listen
            }
        }
        XCTAssertEqual(found, try Self.exampleListeners(node: "app1"))
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
