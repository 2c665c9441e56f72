import Foundation
import MeshTestSupport
import XCTest

/// Automatic failover as README's "Automatic failover" sets it up, in network namespaces: three
/// database nodes each running etcd, Patroni (which runs PostgreSQL) and meshd, and an application
/// node whose meshd runs the `pg` balancer. Every byte etcd, Patroni and PostgreSQL send to another
/// node crosses the mesh: each serves at its node's own loopback address 127.0.1.N, a
/// `same_address` service, and only meshd's port is on the bed's network. Patroni and etcd are
/// configured from examples/patroni, rendered by plain string replacement, so the documented files
/// are the tested ones.
///
/// Everything runs as the `postgres` user (PostgreSQL refuses root) with its files in /dev/shm.
/// `tearDown` (registered by `FailoverTestCase`) kills every process in every namespace, as
/// Patroni detaches the postmaster from itself and nothing else would stop it.
final class PatroniBed {
    struct Failure: Error, CustomStringConvertible {
        var description: String
    }

    static let databases = ["db1", "db2", "db3"]
    static let app = "app1"
    static let nodes = databases + [app]
    /// The balancer's listeners, inside app1's namespace.
    static let rw = (host: "127.0.0.1", port: 6432)
    static let ro = (host: "127.0.0.1", port: 6433)
    static let password = "failover-test"

    static let repository = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    static var examples: URL { self.repository.appendingPathComponent("examples/patroni") }
    /// Where `patroni` and `patronictl` are: the Patroni scripts/test-packages.sh installs (not
    /// Debian 12's 3.0.2, see there), or `TUNNELMESH_PATRONI_BIN`.
    static let patroniBin =
        ProcessInfo.processInfo.environment["TUNNELMESH_PATRONI_BIN"] ?? "/opt/tunnelmesh-test/patroni-3.0.4/bin"

    let bed: NetnsBed
    let mesh: TestMesh
    /// /dev/shm/...: a directory per node, owned by postgres.
    let root: String
    private(set) var meshd: [String: SpawnedProcess] = [:]
    private(set) var etcd: [String: SpawnedProcess] = [:]
    private(set) var patroni: [String: SpawnedProcess] = [:]

    /// Skips, with the reason, where Patroni, etcd or PostgreSQL are not installed.
    static func checkInstalled() throws {
        for program in ["\(self.patroniBin)/patroni", "\(self.patroniBin)/patronictl", "/usr/bin/etcd", "/usr/bin/curl", "/usr/bin/psql"]
        where !FileManager.default.isExecutableFile(atPath: program) {
            throw XCTSkip("failover tests need \(program) (scripts/test-packages.sh installs them)")
        }
        _ = try PostgresCluster.binDirectory()
    }

    init(bed: NetnsBed, mesh: TestMesh) throws {
        self.bed = bed
        self.mesh = mesh
        self.root = try PostgresCluster.makeRoot()
        try self.writeMeshFile()
    }

    /// 127.0.1.N: where node dbN's etcd, Patroni and PostgreSQL listen, on every node.
    static func address(_ node: String) -> String {
        "127.0.1.\(self.nodes.firstIndex(of: node)! + 1)"
    }

    private func directory(_ node: String) -> String { "\(self.root)/\(node)" }

    /// The four same_address services and the balancer: etcd's peers and clients among the
    /// database nodes; Patroni's API and PostgreSQL for them and the application node.
    private func writeMeshFile() throws {
        let all = Self.nodes
        func on(_ port: Int) -> [String: String] {
            Dictionary(uniqueKeysWithValues: Self.databases.map { ($0, "\(Self.address($0)):\(port)") })
        }
        try Self.password.write(toFile: "\(self.root)/meshmon.password", atomically: true, encoding: .utf8)
        self.mesh.file.services = [
            "etcd-peer": .init(on: on(2380), allow: Self.databases, sameAddress: true),
            "etcd-client": .init(on: on(2379), allow: Self.databases, sameAddress: true),
            "patroni-api": .init(on: on(8008), allow: all, sameAddress: true),
            "postgres": .init(
                on: on(5432),
                allow: all,
                postgres: .init(
                    monitorUser: "meshmon",
                    passwordFile: "\(self.root)/meshmon.password",
                    probeInterval: "500ms",
                    patroni: "patroni-api"
                ),
                sameAddress: true
            ),
        ]
        self.mesh.file.balancers = [
            "pg": .init(
                service: "postgres",
                on: [Self.app: .init(rw: "\(Self.rw.host):\(Self.rw.port)", ro: "\(Self.ro.host):\(Self.ro.port)")]
            )
        ]
        try self.mesh.writeConfig()
    }

    // MARK: starting

    /// meshd everywhere, then etcd, then Patroni on the database nodes; returns once Patroni shows a
    /// leader with a synchronous standby and another streaming replica, the balancer routes to
    /// the leader, and the writer's table exists.
    func start() throws {
        let config = self.mesh.root.appendingPathComponent("mesh.json")
        for node in Self.nodes { self.meshd[node] = try self.mesh.start(node, config: config) }
        for node in Self.nodes where node != "db1" {
            guard self.mesh.waitUp(self.meshd["db1"]!, peer: node, timeout: .seconds(20)) else {
                throw Failure(description: "no tunnel db1-\(node)")
            }
        }
        guard self.mesh.waitUp(self.meshd[Self.app]!, peer: "db2"), self.mesh.waitUp(self.meshd[Self.app]!, peer: "db3"),
            self.mesh.waitUp(self.meshd["db2"]!, peer: "db3")
        else { throw Failure(description: "the mesh did not come up") }

        for node in Self.databases { try self.startEtcd(node) }
        for node in Self.databases { try self.startPatroni(node) }
        let leader = try self.waitHealthy(timeout: .seconds(90))
        try self.waitForBalancer(primary: leader, timeout: .seconds(20))
        try self.sql(
            "CREATE TABLE failover_bench (id bigint PRIMARY KEY, node inet DEFAULT inet_server_addr(), at timestamptz DEFAULT clock_timestamp())"
        )
    }

    /// The command prefix running a program inside `node`'s namespace as the postgres user.
    private func asPostgres(_ node: String) -> [String] {
        self.bed.launcher(node) + ["/usr/bin/setpriv", "--reuid=postgres", "--regid=postgres", "--init-groups", "--"]
    }

    private func startEtcd(_ node: String) throws {
        let dir = self.directory(node)
        try self.makeDirectory(dir)
        let cluster = Self.databases.map { "\($0)=http://\(Self.address($0)):2380" }.joined(separator: ",")
        let text = try Self.render(
            "etcd.env",
            ["node": node, "address": Self.address(node), "initial_cluster": cluster, "etcd_data_dir": "\(dir)/etcd"]
        )
        var environment: [String: String] = ["HOME": dir]
        for line in text.split(separator: "\n") where !line.hasPrefix("#") {
            let parts = line.split(separator: "=", maxSplits: 1)
            if parts.count == 2 { environment[String(parts[0])] = String(parts[1]) }
        }
        self.etcd[node] = try SpawnedProcess(
            label: "etcd-\(node)",
            executable: "/usr/bin/etcd",
            arguments: [],
            environment: environment,
            launcher: self.asPostgres(node),
            logURL: self.mesh.logURL("etcd-\(node)")
        )
    }

    private func startPatroni(_ node: String) throws {
        let dir = self.directory(node)
        let hosts = Self.databases.map { "\(Self.address($0)):2379" }.joined(separator: ",")
        let text = try Self.render(
            "patroni.yml",
            [
                "node": node, "address": Self.address(node), "etcd_hosts": hosts, "data_dir": "\(dir)/data",
                "socket_dir": dir, "config_dir": dir, "watchdog_mode": "off",
                "superuser_password": Self.password, "replication_password": Self.password,
                "rewind_password": Self.password, "restapi_password": Self.password,
            ]
        )
        try text.write(toFile: "\(dir)/patroni.yml", atomically: true, encoding: .utf8)
        try Self.password.write(toFile: "\(dir)/meshmon.password", atomically: true, encoding: .utf8)
        let hook = "\(dir)/post-bootstrap.sh"
        try? FileManager.default.removeItem(atPath: hook)
        try FileManager.default.copyItem(atPath: Self.examples.appendingPathComponent("post-bootstrap.sh").path, toPath: hook)
        try Command.check("/bin/chmod", ["0755", hook])
        // Not -R: etcd (already running as postgres) creates and renames files in the same tree.
        try Command.check("/bin/chown", ["postgres:", "\(dir)/patroni.yml", "\(dir)/meshmon.password", hook])
        self.patroni[node] = try SpawnedProcess(
            label: "patroni-\(node)",
            executable: "\(Self.patroniBin)/patroni",
            arguments: ["\(dir)/patroni.yml"],
            environment: ["HOME": dir],
            launcher: self.asPostgres(node),
            logURL: self.mesh.logURL("patroni-\(node)")
        )
    }

    private func makeDirectory(_ path: String) throws {
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        try Command.check("/bin/chown", ["postgres:", path])
        try Command.check("/bin/chmod", ["0700", path])
    }

    /// examples/patroni/NAME with every `{key}` replaced; fails on a placeholder left outside comments.
    static func render(_ name: String, _ values: [String: String]) throws -> String {
        var text = try String(contentsOf: self.examples.appendingPathComponent(name), encoding: .utf8)
        for (key, value) in values { text = text.replacingOccurrences(of: "{\(key)}", with: value) }
        for line in text.split(separator: "\n") {
            let code = line.split(separator: "#", maxSplits: 1, omittingEmptySubsequences: false).first ?? ""
            if let range = code.range(of: #"\{[a-z_]+\}"#, options: .regularExpression) {
                throw Failure(description: "examples/patroni/\(name): no value for \(code[range])")
            }
        }
        return text
    }

    // MARK: observing

    /// One member of Patroni's `/cluster`.
    struct Member: Equatable {
        var name: String
        /// leader, sync_standby, replica (or standby_leader)
        var role: String
        /// running, streaming, stopped, ...
        var state: String
        var timeline: Int?
    }

    /// Patroni's `/cluster` as `from`'s Patroni API (through the mesh for app1) reports it, asking
    /// `via` (a database node); empty when it does not answer within 2 s.
    func cluster(via member: String, from node: String = PatroniBed.app) -> [Member] {
        guard let object = self.getJSON(from: node, url: "http://\(Self.address(member)):8008/cluster") as? [String: Any],
            let members = object["members"] as? [[String: Any]]
        else { return [] }
        return members.compactMap { member in
            guard let name = member["name"] as? String, let role = member["role"] as? String, let state = member["state"] as? String
            else { return nil }
            return Member(name: name, role: role, state: state, timeline: member["timeline"] as? Int)
        }
    }

    /// The leader as any live member's Patroni sees it (nil when none answers or none leads).
    func leader(excluding gone: Set<String> = []) -> String? {
        for member in Self.databases where !gone.contains(member) {
            if let leader = self.cluster(via: member).first(where: { $0.role == "leader" && $0.state == "running" }) {
                return leader.name
            }
        }
        return nil
    }

    /// GET `url` with curl inside `node`'s namespace; the parsed JSON, or nil.
    func getJSON(from node: String, url: String) -> Any? {
        guard let result = try? self.bed.run(in: node, ["/usr/bin/curl", "-s", "-m", "2", url], timeout: .seconds(5)), result.status == 0
        else { return nil }
        return try? JSONSerialization.jsonObject(with: Data(result.stdout.utf8))
    }

    /// Waits for a running leader, a streaming sync standby and a streaming replica; the leader.
    @discardableResult
    func waitHealthy(timeout: Duration) throws -> String {
        let deadline = ContinuousClock.now + timeout
        var last: [Member] = []
        while ContinuousClock.now < deadline {
            // Any member that answers tells the whole cluster; the next one only if it does not.
            for via in Self.databases {
                last = self.cluster(via: via)
                let leader = last.first { $0.role == "leader" && $0.state == "running" }
                let standbys = last.filter { $0.role != "leader" && ($0.state == "streaming" || $0.state == "running") }
                if let leader, standbys.count >= 2, last.contains(where: { $0.role == "sync_standby" }) { return leader.name }
                if !last.isEmpty { break }
            }
            Thread.sleep(forTimeInterval: 0.5)
        }
        throw Failure(description: "Patroni did not reach a healthy cluster within \(timeout); last /cluster: \(last)\n\(self.logs())")
    }

    /// Waits until app1's balancer reports `primary` as the primary.
    func waitForBalancer(primary: String, timeout: Duration) throws {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            if self.balancerPrimaries() == [primary] { return }
            Thread.sleep(forTimeInterval: 0.2)
        }
        throw Failure(description: "app1's balancer did not route writes to \(primary) within \(timeout): \(self.backends())")
    }

    /// One backend as `meshctl backends --json` on app1 shows it.
    struct Backend {
        var role: String
        var state: String
        var patroniRole: String?
        var patroniState: String?
        var patroniLeader: String?
    }

    /// `meshctl backends --json` on app1, by node.
    func backends() -> [String: Backend] {
        guard let result = try? self.mesh.meshctl(Self.app, ["backends", "--json"]),
            let list = (try? JSONSerialization.jsonObject(with: Data(result.stdout.utf8))) as? [[String: Any]]
        else { return [:] }
        var backends: [String: Backend] = [:]
        for entry in list {
            if let node = entry["node"] as? String, let role = entry["role"] as? String, let state = entry["state"] as? String {
                backends[node] = Backend(
                    role: role,
                    state: state,
                    patroniRole: entry["patroni_role"] as? String,
                    patroniState: entry["patroni_state"] as? String,
                    patroniLeader: entry["patroni_leader"] as? String
                )
            }
        }
        return backends
    }

    /// Polls app1's `meshctl backends` until `done` holds for it (reports trail Patroni's own view
    /// by a probe cycle, and Patroni names its sync standby a loop after the leader); the last
    /// view either way.
    func waitForBackends(timeout: Duration, until done: ([String: Backend]) -> Bool) -> [String: Backend] {
        let deadline = ContinuousClock.now + timeout
        var view = self.backends()
        while ContinuousClock.now < deadline, !done(view) {
            Thread.sleep(forTimeInterval: 0.3)
            view = self.backends()
        }
        return view
    }

    /// The nodes app1's balancer currently takes for a primary.
    func balancerPrimaries() -> Set<String> {
        Set(self.backends().filter { $0.value.role == "primary" && $0.value.state == "up" }.keys)
    }

    // MARK: acting

    /// psql inside app1's namespace through the balancer's `rw` (or `ro`) listener.
    @discardableResult
    func sql(_ statement: String, listener: (host: String, port: Int) = PatroniBed.rw) throws -> String {
        let result = try self.bed.run(
            in: Self.app,
            [
                "/usr/bin/psql", "-X", "-A", "-t", "-v", "ON_ERROR_STOP=1",
                "host=\(listener.host) port=\(listener.port) user=postgres dbname=postgres connect_timeout=5", "-c", statement,
            ],
            environment: ["PGPASSWORD": Self.password]
        )
        guard result.status == 0, !result.timedOut else {
            throw Failure(description: "psql \(statement) through \(listener.port) exited \(result.status): \(result.output)")
        }
        return result.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    /// Starts `node`'s etcd member again on its data (after a kill -9, say).
    func restartEtcd(_ node: String) throws {
        try self.startEtcd(node)
    }

    /// Starts `node`'s meshd again with the same mesh.json (what systemd's Restart= would do).
    func restartMeshd(_ node: String) throws {
        self.meshd[node] = try self.mesh.restart(node)
    }

    /// Waits until every etcd member reports itself healthy.
    func waitEtcdHealthy(timeout: Duration) throws {
        let deadline = ContinuousClock.now + timeout
        var unhealthy = Self.databases
        while ContinuousClock.now < deadline, !unhealthy.isEmpty {
            unhealthy = unhealthy.filter { member in
                let health = self.getJSON(from: "db1", url: "http://\(Self.address(member)):2379/health") as? [String: Any]
                return health?["health"] as? String != "true"
            }
            if !unhealthy.isEmpty { Thread.sleep(forTimeInterval: 0.3) }
        }
        guard unhealthy.isEmpty else {
            throw Failure(description: "etcd members \(unhealthy) not healthy within \(timeout)\n\(self.logs())")
        }
    }

    /// Waits until `node`'s own PostgreSQL, asked inside its namespace, is in recovery (a standby).
    func waitForRecovery(on node: String, timeout: Duration) -> Bool {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            let result = try? self.bed.run(
                in: node,
                [
                    "/usr/bin/psql", "-X", "-A", "-t",
                    "host=\(Self.address(node)) port=5432 user=postgres dbname=postgres connect_timeout=2", "-c",
                    "SELECT pg_is_in_recovery()",
                ],
                environment: ["PGPASSWORD": Self.password],
                timeout: .seconds(10)
            )
            if result?.status == 0, result?.stdout.trimmingCharacters(in: .whitespacesAndNewlines) == "t" { return true }
            Thread.sleep(forTimeInterval: 0.5)
        }
        return false
    }

    /// Waits until some member's `/cluster` shows `node` in one of `roles` and `states`; that entry.
    func waitForMember(_ node: String, roles: Set<String>, states: Set<String>, timeout: Duration) -> Member? {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            for via in Self.databases {
                if let member = self.cluster(via: via).first(where: { $0.name == node }), roles.contains(member.role),
                    states.contains(member.state)
                {
                    return member
                }
            }
            Thread.sleep(forTimeInterval: 0.5)
        }
        return nil
    }

    /// kill -9 of every process in `node`'s namespace: its etcd, Patroni, PostgreSQL and meshd.
    func killNode(_ node: String) throws {
        let segments = self.sharedMemorySegments(in: node)
        let killed = try self.bed.killEverything(in: node)
        print("PatroniBed: killed \(killed.count) processes on \(node)")
        Self.removeUnmapped(segments)
    }

    /// Every process stopped (kill -9 in each namespace) and the data removed.
    func tearDown() {
        var segments: Set<String> = []
        for node in Self.nodes {
            segments.formUnion(self.sharedMemorySegments(in: node))
            _ = try? self.bed.killEverything(in: node)
        }
        for process in Array(self.etcd.values) + Array(self.patroni.values) { _ = process.waitForExit(timeout: .seconds(5)) }
        Self.removeUnmapped(segments)
        PostgresCluster.removeRoot(self.root)
    }

    /// PostgreSQL's dynamic shared memory segments (`/dev/shm/PostgreSQL.N`, POSIX shared memory,
    /// so the machine's, not the namespace's) that `node`'s processes map. A postmaster killed -9
    /// leaves them behind; noted before a kill, they can be removed after it.
    private func sharedMemorySegments(in node: String) -> Set<String> {
        var segments: Set<String> = []
        for pid in (try? self.bed.pids(in: node)) ?? [] {
            segments.formUnion(Self.mappedSegments(pid: pid))
        }
        return segments
    }

    private static func mappedSegments(pid: pid_t) -> Set<String> {
        guard let maps = try? String(contentsOfFile: "/proc/\(pid)/maps", encoding: .utf8) else { return [] }
        return Set(
            maps.split(separator: "\n").compactMap { line in
                line.split(separator: " ").last.map(String.init).flatMap { $0.hasPrefix("/dev/shm/PostgreSQL.") ? $0 : nil }
            }
        )
    }

    /// Removes those of `segments` no process maps any more (a surviving server may share none of
    /// them, but the check costs little and a mistake would crash someone else's PostgreSQL).
    private static func removeUnmapped(_ segments: Set<String>) {
        guard !segments.isEmpty else { return }
        let pids = ((try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []).compactMap { pid_t($0) }
        var mapped: Set<String> = []
        for pid in pids { mapped.formUnion(self.mappedSegments(pid: pid)) }
        for segment in segments.subtracting(mapped) { try? FileManager.default.removeItem(atPath: segment) }
    }

    /// The tails of every Patroni and etcd log, for failure messages.
    func logs(lines: Int = 25) -> String {
        (self.patroni.values.sorted { $0.label < $1.label } + self.etcd.values.sorted { $0.label < $1.label })
            .map { $0.logTail(lines) }.joined(separator: "\n")
    }
}
