import Foundation
import MeshTestSupport
import XCTest

/// A mesh made for one test: a temp directory with a PKI from `meshctl`, one 127.61.<range>.<n>
/// address per node (each test its own range, so tests run in parallel processes), free ports,
/// a mesh.json written from `MeshFile`, and the processes it started (stopped by `stopAll`).
final class TestMesh {
    let root: URL
    let pki: TestPKI
    let range: Int
    let nodeNames: [String]
    var file: MeshFile
    private(set) var processes: [SpawnedProcess] = []
    private var usedPorts: Set<Int> = []
    private var logCounter = 0

    init(range: Int, nodes: [String]) throws {
        precondition((1...255).contains(range))
        self.range = range
        self.nodeNames = nodes
        self.root = FileManager.default.temporaryDirectory
            .appendingPathComponent("tunnelmesh-sd-\(range)-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: self.root.appendingPathComponent("logs"), withIntermediateDirectories: true)
        self.pki = try TestPKI(mesh: "sdtest", dir: self.root.appendingPathComponent("pki"))
        self.file = MeshFile(
            mesh: "sdtest",
            tls: .init(ca: "pki/ca.pem", cert: "pki/{node}.pem", key: "pki/{node}.key", crl: "pki/crl.pem"),
            tunnel: .init(pingInterval: "1s", deadAfter: 3, backoffMax: "1s", shutdownGrace: "2s"),
            nodes: [:], services: [:], forwards: [])
        for node in nodes {
            try self.pki.issue(node)
            let host = self.host(node)
            self.file.nodes[node] = .init(
                address: "\(host):\(try self.freePort(host))",
                control: self.root.appendingPathComponent("\(node).sock").path)
        }
    }

    /// The node's own loopback address.
    func host(_ node: String) -> String {
        "127.61.\(self.range).\((self.nodeNames.firstIndex(of: node) ?? 249) + 1)"
    }

    /// host and port of the node's mesh listener.
    func meshAddress(_ node: String) -> (host: String, port: Int) {
        let parts = self.file.nodes[node]!.address.split(separator: ":")
        return (String(parts[0]), Int(parts[1])!)
    }

    /// A port free on `host` now and not handed out before by this mesh.
    func freePort(_ host: String) throws -> Int {
        for _ in 0..<50 {
            let port = try TCPSocket.freePort(host: host)
            if self.usedPorts.insert(port).inserted { return port }
        }
        throw TCPSocket.Failure(description: "no fresh free port on \(host) after 50 tries", code: 0)
    }

    func addService(_ name: String, on: [String: String], allow: [String]) {
        self.file.services[name] = .init(on: on, allow: allow)
    }

    /// A forward on `node` to `service@target`, on a free port of the node's address.
    @discardableResult
    func addForward(on node: String, to target: String) throws -> (host: String, port: Int) {
        let host = self.host(node)
        let port = try self.freePort(host)
        self.file.forwards.append(.init(on: node, listen: "\(host):\(port)", to: target))
        return (host, port)
    }

    @discardableResult
    func writeConfig() throws -> URL {
        let url = self.root.appendingPathComponent("mesh.json")
        try self.file.write(to: url)
        return url
    }

    func logURL(_ name: String) -> URL {
        self.logCounter += 1
        return self.root.appendingPathComponent("logs/\(name)-\(self.logCounter).log")
    }

    /// Starts `meshd --config mesh.json --node NODE --log-level debug [extra]` with `environment`
    /// and the listening sockets `passing` (fds 3, 4, … named by `LISTEN_FDNAMES` in `environment`).
    func start(_ node: String, environment: [String: String] = [:], passing fds: [Int32] = [],
               extraArguments: [String] = []) throws -> SpawnedProcess {
        let config = try self.writeConfig()
        return try self.spawn(
            label: node, executable: BuildProducts.meshd.path,
            arguments: ["--config", config.path, "--node", node, "--log-level", "debug"] + extraArguments,
            environment: environment, passing: fds)
    }

    /// Starts any program, stopped with the mesh.
    func spawn(label: String, executable: String, arguments: [String], environment: [String: String] = [:],
               passing fds: [Int32] = []) throws -> SpawnedProcess {
        let process = try SpawnedProcess(
            label: label, executable: executable, arguments: arguments, environment: environment, passing: fds,
            logURL: self.logURL(label))
        self.processes.append(process)
        return process
    }

    /// Waits until `process` logs that its tunnel to `peer` is up.
    func waitUp(_ process: SpawnedProcess, peer: String, timeout: Duration = .seconds(15),
                file: StaticString = #filePath, line: UInt = #line) -> Bool {
        let found = process.waitForLog(containing: ["peer \(peer) up"], timeout: timeout) != nil
        if !found {
            XCTFail("\(process.label) did not report peer \(peer) up within \(timeout)\n\(self.allLogs())", file: file, line: line)
        }
        return found
    }

    func stopAll() {
        for process in self.processes where process.isRunning { process.stop() }
    }

    func allLogs(lines: Int = 60) -> String {
        self.processes.map { $0.logTail(lines) }.joined(separator: "\n")
    }

    func removeFiles() {
        try? FileManager.default.removeItem(at: self.root)
    }
}
