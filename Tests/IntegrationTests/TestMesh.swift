import Foundation
import MeshTestSupport
import XCTest

/// A mesh made for one test: a temp directory with a PKI from `meshctl`, one address per node
/// (see `Addressing`), free ports, a mesh.json written from `MeshFile`, and the meshd processes it
/// started.
final class TestMesh {
    /// Where the nodes live.
    enum Addressing {
        /// On loopback, node n at 127.60.<range>.<n>: each test passes its own `range`, so tests can
        /// run in parallel processes.
        case loopback(range: Int)
        /// Each node in its own network namespace of `bed`, at the bed's address for it; meshd runs
        /// inside the namespace.
        case namespaces(NetnsBed)
    }

    let root: URL
    let pki: TestPKI
    let addressing: Addressing
    let nodeNames: [String]
    var file: MeshFile
    private(set) var processes: [MeshProcess] = []
    private var usedPorts: Set<Int> = []
    private var logCounter = 0

    /// `nodes` in order get addresses .1, .2, ...; every node gets a certificate except those in
    /// `withoutCertificates` (declared in mesh.json, left for the test to issue oddly).
    convenience init(range: Int, nodes: [String], mesh: String = "itest", tunnel: MeshFile.Tunnel? = nil, crl: Bool = true,
                     withoutCertificates: Set<String> = []) throws {
        precondition((1...255).contains(range))
        try self.init(addressing: .loopback(range: range), nodes: nodes, mesh: mesh, tunnel: tunnel, crl: crl,
                      withoutCertificates: withoutCertificates)
    }

    init(addressing: Addressing, nodes: [String], mesh: String = "itest", tunnel: MeshFile.Tunnel? = nil, crl: Bool = true,
         withoutCertificates: Set<String> = []) throws {
        self.addressing = addressing
        self.nodeNames = nodes
        let label: String
        switch addressing {
        case .loopback(let range): label = "\(range)"
        case .namespaces(let bed): label = bed.base
        }
        self.root = FileManager.default.temporaryDirectory
            .appendingPathComponent("tunnelmesh-it-\(label)-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: self.root.appendingPathComponent("logs"), withIntermediateDirectories: true)
        self.pki = try TestPKI(mesh: mesh, dir: self.root.appendingPathComponent("pki"))
        self.file = MeshFile(
            mesh: mesh,
            tls: .init(ca: "pki/ca.pem", cert: "pki/{node}.pem", key: "pki/{node}.key", crl: crl ? "pki/crl.pem" : nil),
            tunnel: tunnel ?? .init(pingInterval: "1s", deadAfter: 3, backoffMax: "2s", shutdownGrace: "2s"),
            nodes: [:], services: [:], forwards: [])
        for node in nodes {
            if !withoutCertificates.contains(node) { try self.pki.issue(node) }
            let host = self.host(node)
            let port = try self.freePort(host)
            self.file.nodes[node] = .init(address: "\(host):\(port)", control: self.controlPath(node))
        }
    }

    /// The node's own address (loopback, or its namespace's address).
    func host(_ node: String) -> String {
        switch self.addressing {
        case .loopback(let range):
            guard let index = self.nodeNames.firstIndex(of: node) else { return "127.60.\(range).250" }
            return "127.60.\(range).\(index + 1)"
        case .namespaces(let bed):
            return bed.address(node)
        }
    }

    /// The node's control socket (its `control` in mesh.json).
    func controlPath(_ node: String) -> String {
        self.root.appendingPathComponent("\(node).sock").path
    }

    /// `meshctl COMMAND --control <node's socket> ARGS`, bounded by `timeout`; whatever it exited with.
    func meshctl(_ node: String, _ command: [String], timeout: Duration = .seconds(20)) throws -> CommandResult {
        try Command.run(BuildProducts.meshctl.path, command + ["--control", self.controlPath(node)], timeout: timeout)
    }

    /// host and port of the node's mesh listener.
    func meshAddress(_ node: String) -> (host: String, port: Int) {
        let address = self.file.nodes[node]!.address
        let parts = address.split(separator: ":")
        return (String(parts[0]), Int(parts[1])!)
    }

    /// A port free on `host` now and not handed out before by this mesh. In namespaces (fresh, empty,
    /// made for this mesh) every port is free: they are handed out in order from 20000.
    func freePort(_ host: String) throws -> Int {
        if case .namespaces = self.addressing {
            let port = 20000 + self.usedPorts.count
            self.usedPorts.insert(port)
            return port
        }
        for _ in 0..<50 {
            let port = try TCPSocket.freePort(host: host)
            if self.usedPorts.insert(port).inserted { return port }
        }
        throw TCPSocket.Failure(description: "no fresh free port on \(host) after 50 tries")
    }

    func addService(_ name: String, on: [String: String], allow: [String]) {
        self.file.services[name] = .init(on: on, allow: allow)
    }

    /// A forward on `node` to `service@target`, listening on a free port of the node's address.
    @discardableResult
    func addForward(on node: String, to target: String) throws -> (host: String, port: Int) {
        let host = self.host(node)
        let port = try self.freePort(host)
        self.file.forwards.append(.init(on: node, listen: "\(host):\(port)", to: target))
        return (host, port)
    }

    /// Writes `file` (default: this mesh's) as `name` in the mesh directory.
    @discardableResult
    func writeConfig(_ file: MeshFile? = nil, name: String = "mesh.json") throws -> URL {
        let url = self.root.appendingPathComponent(name)
        try (file ?? self.file).write(to: url)
        return url
    }

    /// Starts meshd for `node` with `config` (default: mesh.json, written now).
    func start(_ node: String, config: URL? = nil) throws -> MeshProcess {
        let config = try config ?? self.writeConfig()
        self.logCounter += 1
        let log = self.root.appendingPathComponent("logs/\(node)-\(self.logCounter).log")
        var launcher: [String] = []
        if case .namespaces(let bed) = self.addressing { launcher = bed.launcher(node) }
        let process = try MeshProcess(config: config, node: node, logURL: log, launcher: launcher)
        self.processes.append(process)
        return process
    }

    /// The most recently started process of `node`.
    func latest(_ node: String) -> MeshProcess? {
        self.processes.last { $0.node == node }
    }

    /// Starts `node` again (after a kill -9, say) with the current mesh.json.
    @discardableResult
    func restart(_ node: String) throws -> MeshProcess {
        try self.start(node, config: self.root.appendingPathComponent("mesh.json"))
    }

    /// Waits until `process` logs that its tunnel to `peer` is up (after `mark`).
    func waitUp(_ process: MeshProcess, peer: String, after mark: Int = 0, timeout: Duration = .seconds(15),
                file: StaticString = #filePath, line: UInt = #line) -> Bool {
        let found = process.waitForLog(containing: "peer \(peer) up", after: mark, timeout: timeout) != nil
        if !found {
            XCTFail("\(process.node) did not report peer \(peer) up within \(timeout)\n\(process.logTail())", file: file, line: line)
        }
        return found
    }

    /// Stops every process this mesh started (SIGTERM, then SIGKILL); returns nodes that did not
    /// exit 0 after SIGTERM, for tests that check clean shutdown.
    @discardableResult
    func stopAll() -> [String] {
        var unclean: [String] = []
        for process in self.processes where process.isRunning {
            if process.stop() != 0 { unclean.append(process.node) }
        }
        return unclean
    }

    /// Every log, for failure messages.
    func allLogs(lines: Int = 60) -> String {
        self.processes.map { $0.logTail(lines) }.joined(separator: "\n")
    }

    func removeFiles() {
        try? FileManager.default.removeItem(at: self.root)
    }
}
