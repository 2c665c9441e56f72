import Foundation
import MeshTestSupport
import XCTest

/// A small network of hosts made of Linux network namespaces: one namespace per node, each with a
/// veth pair whose other end is a port of a bridge living in a hub namespace of its own, and a
/// private address 10.231.0.N/24 inside the node's namespace. Nothing is added to the root
/// namespace. A node is cut off by taking its bridge port down (the cable pulled at the switch:
/// packets vanish, nobody gets an error) and healed by bringing it back up.
///
/// Names carry the test process's pid (`tmbed<pid>-...`), so parallel runs never collide and a
/// later run can sweep what a crashed one left behind. `tearDown()` deletes every namespace; the
/// processes inside must be stopped first (a namespace lives on while a process holds it).
final class NetnsBed: NodeNamespaces {
    struct Failure: Error, CustomStringConvertible {
        var description: String
    }

    static let subnet = "10.231.0"
    /// The prefix every bed of this process uses; `sweepStale` removes others' whose pid is gone.
    static let prefix = "tmbed\(getpid())-"
    private static let serial = NSLock()
    nonisolated(unsafe) private static var count = 0

    let nodes: [String]
    let hub: String
    /// `tmbed<pid>-<n>`: every namespace of this bed is named `<base>-<node>` (the hub `<base>-hub`).
    let base: String
    private var namespaces: [String] = []
    private var torn = false

    /// Creates the hub and one namespace per node (addresses .1, .2, ... in `nodes` order). Throws
    /// `XCTSkip` when namespaces cannot be made here (no `ip`, not root, no CAP_NET_ADMIN), and
    /// removes whatever it made when a later step fails.
    init(nodes: [String]) throws {
        precondition(!nodes.isEmpty && nodes.count < 250)
        let ip = Command.resolve("ip")
        guard FileManager.default.isExecutableFile(atPath: ip) else {
            throw XCTSkip("network-namespace tests need iproute2's `ip` (apt-get install iproute2); not found on PATH")
        }
        self.nodes = nodes
        let id = Self.serial.withLock {
            Self.count += 1
            return Self.count
        }
        let base = "\(Self.prefix)\(id)"
        self.base = base
        self.hub = "\(base)-hub"
        Self.sweepStale()
        do {
            try Self.ip(["netns", "add", self.hub])
        } catch {
            throw XCTSkip("cannot create network namespaces here (`ip netns` needs root: CAP_NET_ADMIN and CAP_SYS_ADMIN): \(error)")
        }
        self.namespaces.append(self.hub)
        do {
            try Self.ip(["-n", self.hub, "link", "set", "lo", "up"])
            try Self.ip(["-n", self.hub, "link", "add", "br0", "type", "bridge"])
            try Self.ip(["-n", self.hub, "link", "set", "br0", "up"])
            for (index, node) in nodes.enumerated() {
                let ns = "\(base)-\(node)"
                try Self.ip(["netns", "add", ns])
                self.namespaces.append(ns)
                let port = Self.port(index)
                try Self.ip(["-n", ns, "link", "set", "lo", "up"])
                try Self.ip(["-n", self.hub, "link", "add", port, "type", "veth", "peer", "name", "eth0", "netns", ns])
                try Self.ip(["-n", self.hub, "link", "set", port, "master", "br0"])
                try Self.ip(["-n", self.hub, "link", "set", port, "up"])
                try Self.ip(["-n", ns, "addr", "add", "\(Self.subnet).\(index + 1)/24", "dev", "eth0"])
                try Self.ip(["-n", ns, "link", "set", "eth0", "up"])
            }
        } catch {
            self.tearDown()
            throw error
        }
    }

    deinit { self.tearDown() }

    /// The namespace `node` lives in.
    func namespace(_ node: String) -> String {
        "\(self.base)-\(node)"
    }

    /// The node's address inside its namespace.
    func address(_ node: String) -> String {
        "\(Self.subnet).\(self.index(node) + 1)"
    }

    /// The command prefix that runs a program inside the node's namespace.
    func launcher(_ node: String) -> [String] {
        [Command.resolve("ip"), "netns", "exec", self.namespace(node)]
    }

    /// Runs a short command inside the node's namespace (`environment` is added to the test's).
    func run(
        in node: String,
        _ arguments: [String],
        environment: [String: String] = [:],
        timeout: Duration = .seconds(20)
    ) throws
        -> CommandResult
    {
        let launcher = self.launcher(node)
        var env = ProcessInfo.processInfo.environment
        for (key, value) in environment { env[key] = value }
        return try Command.run(launcher[0], Array(launcher.dropFirst()) + arguments, environment: env, timeout: timeout)
    }

    /// kill -9 of every process whose network namespace is the node's (`ip netns pids`), as when
    /// the host dies: also what its programs detached from themselves (a postmaster, say). The pids.
    @discardableResult
    func killEverything(in node: String) throws -> [pid_t] {
        let pids = try self.pids(in: node)
        for pid in pids { kill(pid, SIGKILL) }
        return pids
    }

    /// The processes whose network namespace is the node's.
    func pids(in node: String) throws -> [pid_t] {
        try Self.ip(["netns", "pids", self.namespace(node)]).stdout.split(whereSeparator: \.isWhitespace).compactMap { pid_t($0) }
    }

    /// Takes the node's bridge port down: its packets (and packets to it) are dropped silently, as
    /// when a host falls off the network; its processes keep running and see no error.
    func cutOff(_ node: String) throws {
        try Self.ip(["-n", self.hub, "link", "set", Self.port(self.index(node)), "down"])
    }

    /// Brings the node's bridge port back up.
    func heal(_ node: String) throws {
        try Self.ip(["-n", self.hub, "link", "set", Self.port(self.index(node)), "up"])
    }

    /// Deletes every namespace this bed made (the veth pairs and the bridge go with them).
    /// Idempotent; failures are printed, not thrown, so teardown always gets through the list.
    func tearDown() {
        guard !self.torn else { return }
        self.torn = true
        for ns in self.namespaces.reversed() {
            do { try Self.ip(["netns", "del", ns]) } catch { print("NetnsBed: could not delete namespace \(ns): \(error)") }
        }
        self.namespaces = []
    }

    private func index(_ node: String) -> Int {
        guard let index = self.nodes.firstIndex(of: node) else { preconditionFailure("\(node) is not a node of this bed (\(self.nodes))") }
        return index
    }

    /// The hub-side veth of the node at `index` (interface names are at most 15 bytes).
    private static func port(_ index: Int) -> String { "p\(index + 1)" }

    @discardableResult
    static func ip(_ arguments: [String]) throws -> CommandResult {
        let result = try Command.run(Command.resolve("ip"), arguments, timeout: .seconds(20))
        guard result.status == 0, !result.timedOut else {
            throw Failure(
                description:
                    "ip \(arguments.joined(separator: " ")) exited \(result.status)\(result.timedOut ? " (timed out)" : ""): \(result.output.trimmingCharacters(in: .whitespacesAndNewlines))"
            )
        }
        return result
    }

    /// Deletes `tmbed<pid>-*` namespaces left by test processes that no longer exist (killed before
    /// their tearDown ran). Namespaces of live processes, and any other names, are left alone.
    static func sweepStale() {
        guard let names = try? FileManager.default.contentsOfDirectory(atPath: "/var/run/netns") else { return }
        for name in names where name.hasPrefix("tmbed") && !name.hasPrefix(self.prefix) {
            let digits = name.dropFirst("tmbed".count).prefix { $0.isNumber }
            guard let pid = Int32(digits), kill(pid, 0) != 0, errno == ESRCH else { continue }
            print("NetnsBed: removing stale namespace \(name) (its test process \(pid) is gone)")
            _ = try? self.ip(["netns", "del", name])
        }
    }
}
