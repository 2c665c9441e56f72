import Foundation
import XCTest

/// Network namespaces a mesh's nodes can live in, one per node (IntegrationTests' `NetnsBed`).
public protocol NodeNamespaces: AnyObject {
    /// A label unique to these namespaces, used in the mesh's directory name.
    var base: String { get }
    /// The node's address inside its namespace.
    func address(_ node: String) -> String
    /// A command prefix that runs a program inside the node's namespace (and execs it in place).
    func launcher(_ node: String) -> [String]
}

/// A mesh made for one test: a temp directory with a PKI from `meshctl`, one address per node
/// (see `Addressing`), free ports, a mesh.json written from `MeshFile`, and the processes it started
/// (stopped by `stopAll`, which `MeshTestCase` calls at teardown).
public final class TestMesh {
    /// Where the nodes live.
    public enum Addressing {
        /// On loopback, node n at 127.60.<range>.<n>: each test passes its own `range`, so tests can
        /// run in parallel processes.
        case loopback(range: Int)
        /// Each node in its own network namespace, at its address there; meshd runs inside it.
        case namespaces(NodeNamespaces)
    }

    public let root: URL
    public let pki: TestPKI
    public let addressing: Addressing
    public let nodeNames: [String]
    public var file: MeshFile
    public private(set) var processes: [SpawnedProcess] = []
    private var usedPorts: Set<Int> = []
    private var logCounter = 0

    /// The tunnel settings of a test mesh (README's "What it survives" quotes them): a death is
    /// noticed within 4 s and a comeback redialed within 2 s, and SIGTERM waits 2 s, not 10, for
    /// open streams.
    public static var fastTunnel: MeshFile.Tunnel { .init(pingInterval: "1s", deadAfter: 3, backoffMax: "2s", shutdownGrace: "2s") }

    /// A command prefix for every meshd a test mesh starts, from `MESHD_LAUNCHER` (split at spaces),
    /// e.g. `valgrind --error-exitcode=99` or `setarch -R`; it must exec meshd in place.
    public static let launcherFromEnvironment: [String] =
        (ProcessInfo.processInfo.environment["MESHD_LAUNCHER"] ?? "").split(separator: " ").map(String.init)

    /// `nodes` in order get addresses .1, .2, ...; every node gets a certificate except those in
    /// `withoutCertificates` (declared in mesh.json, left for the test to issue oddly).
    public convenience init(
        range: Int,
        nodes: [String],
        mesh: String = "itest",
        tunnel: MeshFile.Tunnel? = nil,
        crl: Bool = true,
        withoutCertificates: Set<String> = []
    ) throws {
        precondition((1...255).contains(range))
        try self.init(
            addressing: .loopback(range: range),
            nodes: nodes,
            mesh: mesh,
            tunnel: tunnel,
            crl: crl,
            withoutCertificates: withoutCertificates
        )
    }

    public init(
        addressing: Addressing,
        nodes: [String],
        mesh: String = "itest",
        tunnel: MeshFile.Tunnel? = nil,
        crl: Bool = true,
        withoutCertificates: Set<String> = []
    ) throws {
        self.addressing = addressing
        self.nodeNames = nodes
        let label: String
        switch addressing {
        case .loopback(let range): label = "\(range)"
        case .namespaces(let namespaces): label = namespaces.base
        }
        self.root = FileManager.default.temporaryDirectory
            .appendingPathComponent("tunnelmesh-test-\(label)-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: self.root.appendingPathComponent("logs"), withIntermediateDirectories: true)
        self.pki = try TestPKI(mesh: mesh, dir: self.root.appendingPathComponent("pki"))
        self.file = MeshFile(
            mesh: mesh,
            tls: .init(ca: "pki/ca.pem", cert: "pki/{node}.pem", key: "pki/{node}.key", crl: crl ? "pki/crl.pem" : nil),
            tunnel: tunnel ?? Self.fastTunnel,
            nodes: [:],
            services: [:],
            forwards: []
        )
        for node in nodes {
            if !withoutCertificates.contains(node) { try self.pki.issue(node) }
            let host = self.host(node)
            let port = try self.freePort(host)
            self.file.nodes[node] = .init(address: "\(host):\(port)", control: self.controlPath(node))
        }
    }

    /// The node's own address (loopback, or its namespace's address).
    public func host(_ node: String) -> String {
        switch self.addressing {
        case .loopback(let range):
            guard let index = self.nodeNames.firstIndex(of: node) else { return "127.60.\(range).250" }
            return "127.60.\(range).\(index + 1)"
        case .namespaces(let namespaces):
            return namespaces.address(node)
        }
    }

    /// The node's control socket (its `control` in mesh.json).
    public func controlPath(_ node: String) -> String {
        self.root.appendingPathComponent("\(node).sock").path
    }

    /// `meshctl COMMAND --control <node's socket> ARGS`, bounded by `timeout`; whatever it exited with.
    public func meshctl(_ node: String, _ command: [String], timeout: Duration = .seconds(20)) throws -> CommandResult {
        try Command.run(BuildProducts.meshctl.path, command + ["--control", self.controlPath(node)], timeout: timeout)
    }

    /// `meshctl peers --json` on `node`, parsed (exit 0 or 1: both carry the peers); empty when it failed.
    public func peers(seenBy node: String) -> [[String: Any]] {
        guard let result = try? self.meshctl(node, ["peers", "--json"]), result.status <= 1 else { return [] }
        return ((try? JSONSerialization.jsonObject(with: Data(result.stdout.utf8))) as? [[String: Any]]) ?? []
    }

    /// One peer of `peers(seenBy:)`.
    public func peer(_ name: String, seenBy node: String) -> [String: Any]? {
        self.peers(seenBy: node).first { $0["name"] as? String == name }
    }

    /// host and port of the node's mesh listener.
    public func meshAddress(_ node: String) -> (host: String, port: Int) {
        let parts = self.file.nodes[node]!.address.split(separator: ":")
        return (String(parts[0]), Int(parts[1])!)
    }

    /// A port free on `host` now and not handed out before by this mesh. In namespaces (fresh, empty,
    /// made for this mesh) every port is free: they are handed out in order from 20000.
    public func freePort(_ host: String) throws -> Int {
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

    public func addService(_ name: String, on: [String: String], allow: [String]) {
        self.file.services[name] = .init(on: on, allow: allow)
    }

    /// A forward on `node` to `service@target`, listening on a free port of the node's address.
    @discardableResult
    public func addForward(on node: String, to target: String) throws -> (host: String, port: Int) {
        let host = self.host(node)
        let port = try self.freePort(host)
        self.file.forwards.append(.init(on: node, listen: "\(host):\(port)", to: target))
        return (host, port)
    }

    /// Writes `file` (default: this mesh's) as `name` in the mesh directory.
    @discardableResult
    public func writeConfig(_ file: MeshFile? = nil, name: String = "mesh.json") throws -> URL {
        let url = self.root.appendingPathComponent(name)
        try (file ?? self.file).write(to: url)
        return url
    }

    /// A fresh log file in the mesh directory for a process labelled `name`.
    public func logURL(_ name: String) -> URL {
        self.logCounter += 1
        return self.root.appendingPathComponent("logs/\(name)-\(self.logCounter).log")
    }

    /// Starts `meshd --config CONFIG --node NODE --log-level debug [extra]` (CONFIG default: mesh.json,
    /// written now) with `environment` and the listening sockets `passing` (fds 3, 4, … named by
    /// `LISTEN_FDNAMES` in `environment`); in namespaces, inside the node's.
    @discardableResult
    public func start(
        _ node: String,
        config: URL? = nil,
        environment: [String: String] = [:],
        passing fds: [Int32] = [],
        extraArguments: [String] = []
    ) throws -> SpawnedProcess {
        let config = try config ?? self.writeConfig()
        var launcher = Self.launcherFromEnvironment
        if case .namespaces(let namespaces) = self.addressing { launcher = namespaces.launcher(node) + launcher }
        return try self.spawn(
            label: node,
            executable: BuildProducts.meshd.path,
            arguments: ["--config", config.path, "--node", node, "--log-level", "debug"] + extraArguments,
            environment: environment,
            passing: fds,
            launcher: launcher
        )
    }

    /// Starts any program, stopped with the mesh.
    public func spawn(
        label: String,
        executable: String,
        arguments: [String],
        environment: [String: String] = [:],
        passing fds: [Int32] = [],
        launcher: [String] = [],
        interactive: Bool = false
    ) throws -> SpawnedProcess {
        let process = try SpawnedProcess(
            label: label,
            executable: executable,
            arguments: arguments,
            environment: environment,
            passing: fds,
            launcher: launcher,
            interactive: interactive,
            logURL: self.logURL(label)
        )
        self.processes.append(process)
        return process
    }

    /// The most recently started process labelled `node`.
    public func latest(_ node: String) -> SpawnedProcess? {
        self.processes.last { $0.label == node }
    }

    /// Starts `node` again (after a kill -9, say) with the current mesh.json.
    @discardableResult
    public func restart(_ node: String) throws -> SpawnedProcess {
        try self.start(node, config: self.root.appendingPathComponent("mesh.json"))
    }

    /// Waits until `process` logs that its tunnel to `peer` is up (after `mark`).
    @discardableResult
    public func waitUp(
        _ process: SpawnedProcess,
        peer: String,
        after mark: Int = 0,
        timeout: Duration = .seconds(15),
        file: StaticString = #filePath,
        line: UInt = #line
    ) -> Bool {
        let found = process.waitForLog(containing: "peer \(peer) up", after: mark, timeout: timeout) != nil
        if !found {
            XCTFail("\(process.label) did not report peer \(peer) up within \(timeout)\n\(self.allLogs())", file: file, line: line)
        }
        return found
    }

    /// Stops every process this mesh started (SIGTERM, then SIGKILL); returns the labels of those
    /// that did not exit 0 after SIGTERM, for tests that check clean shutdown.
    @discardableResult
    public func stopAll() -> [String] {
        var unclean: [String] = []
        for process in self.processes where process.isRunning {
            if process.stop() != 0 { unclean.append(process.label) }
        }
        return unclean
    }

    /// Every log, for failure messages.
    public func allLogs(lines: Int = 60) -> String {
        self.processes.map { $0.logTail(lines) }.joined(separator: "\n")
    }

    public func removeFiles() {
        try? FileManager.default.removeItem(at: self.root)
    }
}
