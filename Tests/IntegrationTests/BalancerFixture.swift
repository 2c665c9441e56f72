import Foundation
import MeshTestSupport
import XCTest

/// A mesh with real PostgreSQL for the balancer tests: `app1` runs the `pg` balancer (rw and ro
/// listeners on its own address); each database node `db1`, `db2`, ... serves the `postgres`
/// service from a cluster of its own, probed as `meshmon`. By default db1 is the primary and the
/// others are streaming standbys of it; `independent` makes every cluster a primary of its own
/// (a split brain). The test case stops everything at teardown.
final class BalancerFixture {
    enum Listener { case rw, ro }

    let mesh: TestMesh
    let pgRoot: String
    /// Database node name -> its cluster.
    private(set) var clusters: [String: PostgresCluster] = [:]
    let rw: (host: String, port: Int)
    let ro: (host: String, port: Int)
    let psqlPath: String
    let pgbenchPath: String
    private(set) var app1: SpawnedProcess?
    private(set) var databaseNodes: [String: SpawnedProcess] = [:]

    init(
        test: MeshTestCase,
        range: Int,
        databases: Int = 2,
        independent: Bool = false,
        maxLag: String = "10s",
        roFallback: String = "primary",
        hba: [String] = [],
        tls: MeshFile.Balancer.TLS? = nil
    ) throws {
        // Without PostgreSQL installed the balancer tests skip, saying how to get it.
        let bin: String
        do {
            bin = try PostgresCluster.binDirectory()
        } catch {
            throw XCTSkip("\(error)")
        }
        let names = (1...databases).map { "db\($0)" }
        self.mesh = try test.makeMesh(range: range, nodes: ["app1"] + names)
        self.pgRoot = try PostgresCluster.makeRoot()
        let root = self.pgRoot
        test.addCleanup { PostgresCluster.removeRoot(root) }
        self.psqlPath = bin + "/psql"
        self.pgbenchPath = bin + "/pgbench"

        var clusters: [String: PostgresCluster] = [:]
        let primary = try PostgresCluster.primary(name: "db1", in: root, hba: hba)
        test.addCleanup { primary.stop() }
        try primary.sql("CREATE ROLE meshmon LOGIN; GRANT pg_monitor TO meshmon;")
        clusters["db1"] = primary
        for name in names.dropFirst() {
            let cluster =
                independent
                ? try PostgresCluster.primary(name: name, in: root, hba: hba) : try primary.makeStandby(name: name, in: root)
            test.addCleanup { cluster.stop() }
            if independent { try cluster.sql("CREATE ROLE meshmon LOGIN; GRANT pg_monitor TO meshmon;") }
            clusters[name] = cluster
        }
        self.clusters = clusters

        let host = self.mesh.host("app1")
        self.rw = (host, try self.mesh.freePort(host))
        self.ro = (host, try self.mesh.freePort(host))
        self.mesh.file.services["postgres"] = .init(
            on: clusters.mapValues { "127.0.0.1:\($0.port)" },
            allow: ["app1"],
            postgres: .init(monitorUser: "meshmon", probeInterval: "500ms")
        )
        self.mesh.file.balancers = [
            "pg": .init(
                service: "postgres",
                on: ["app1": .init(rw: "\(host):\(self.rw.port)", ro: "\(host):\(self.ro.port)")],
                maxLag: maxLag,
                roFallback: roFallback,
                tls: tls
            )
        ]
    }

    func cluster(_ node: String) -> PostgresCluster { self.clusters[node]! }

    /// Starts every node's meshd and waits until app1's tunnels are up.
    func start() throws {
        let config = try self.mesh.writeConfig()
        for node in self.clusters.keys.sorted() { self.databaseNodes[node] = try self.mesh.start(node, config: config) }
        let app1 = try self.mesh.start("app1", config: config)
        self.app1 = app1
        for node in self.clusters.keys.sorted() {
            guard self.mesh.waitUp(app1, peer: node) else { throw PostgresCluster.Problem("tunnel to \(node) not up") }
        }
    }

    /// psql through a balancer listener: unaligned, tuples only, stops at the first error.
    func psql(
        _ listener: Listener,
        _ sql: String,
        user: String = "postgres",
        password: String? = nil,
        sslmode: String = "disable",
        timeout: Duration = .seconds(20)
    ) throws -> CommandResult {
        let target = listener == .rw ? self.rw : self.ro
        var conninfo = "host=\(target.host) port=\(target.port) user=\(user) dbname=postgres sslmode=\(sslmode) connect_timeout=10"
        if let password { conninfo += " password=\(password)" }
        return try Command.run(
            self.psqlPath,
            ["-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-d", conninfo, "-c", sql],
            timeout: timeout
        )
    }

    /// The port of the PostgreSQL that served a session through `listener`, or nil on failure.
    func servedBy(_ listener: Listener) -> String? {
        guard let result = try? self.psql(listener, "SELECT current_setting('port')", timeout: .seconds(10)),
            result.status == 0
        else { return nil }
        let port = result.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        return self.clusters.first { "\($0.value.port)" == port }?.key
    }

    /// Whether app1's registry holds a report of `node` with replay paused (`meshctl backends --json`).
    func backendShowsPaused(_ node: String) -> Bool {
        guard let result = try? self.mesh.meshctl("app1", ["backends", "--json"]),
            let rows = try? JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [[String: Any]]
        else { return false }
        return rows.contains { $0["node"] as? String == node && $0["replay_paused"] as? Bool == true }
    }

    /// Polls `condition` every 100 ms until it holds or `timeout` passes; whether it held.
    func wait(timeout: Duration, _ condition: () -> Bool) -> Bool {
        let start = ContinuousClock.now
        while ContinuousClock.now - start < timeout {
            if condition() { return true }
            Thread.sleep(forTimeInterval: 0.1)
        }
        return condition()
    }

    /// Waits until rw reaches `primary` and ro reaches one of `readers`.
    func waitRouted(primary: String, readers: Set<String>, timeout: Duration = .seconds(20)) -> Bool {
        self.wait(timeout: timeout) {
            self.servedBy(.rw) == primary && self.servedBy(.ro).map(readers.contains) == true
        }
    }

    func logs() -> String { self.mesh.allLogs() }
}

/// One psql session kept open, fed statements on stdin one at a time, so a test can hold a
/// session across an event (a failover) and see whether it survived.
final class HeldPsql {
    private let process: SpawnedProcess

    init(psql: String, host: String, port: Int, user: String = "postgres") throws {
        // stdbuf: psql's stdout is a file, which stdio would buffer until exit. Its errors go to
        // /dev/null, so the log holds answers only and a cut session reads as no answer.
        self.process = try SpawnedProcess(
            label: "psql",
            executable: "/bin/sh",
            arguments: [
                "-c", "exec \"$@\" 2>/dev/null", "sh", "/usr/bin/stdbuf", "-oL", psql, "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1",
                "-d", "host=\(host) port=\(port) user=\(user) dbname=postgres sslmode=disable",
            ],
            interactive: true
        )
    }

    /// Runs `sql`; its first output line, or nil when the session is gone or no answer came in time.
    func run(_ sql: String, timeout: Duration = .seconds(10)) -> String? {
        guard self.process.isRunning else { return nil }
        let mark = self.process.logMark()
        self.process.send(sql + ";\n")
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            if let line = self.firstLine(after: mark) { return line }
            if !self.process.isRunning { return self.firstLine(after: mark) }
            Thread.sleep(forTimeInterval: 0.05)
        }
        return nil
    }

    private func firstLine(after mark: Int) -> String? {
        let text = self.process.log(after: mark)
        guard let newline = text.firstIndex(of: "\n") else { return nil }
        return String(text[..<newline])
    }

    func stop() {
        self.process.stop()
    }
}
