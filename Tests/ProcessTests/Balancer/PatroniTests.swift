import Foundation
import MeshTestSupport
import XCTest

/// A real etcd and a real single-member Patroni managing a real PostgreSQL on 127.0.0.1, served to
/// the mesh by db1's meshd with the `patroni` key; app1 runs the balancer. `meshctl backends` on
/// app1 must show what db1's Patroni says (leader, running, DCS leader db1) once the report has
/// crossed the tunnel, and, after PostgreSQL is stopped under a paused Patroni, that it is stopped
/// and that rw is refused naming it.
final class PatroniTests: MeshTestCase {
    /// Patroni's member name, deliberately not the mesh node's: the member is found by its API address.
    static let member = "pg-one"

    func testBackendsShowPatroniAndAStoppedPostgreSQLIsNotChosen() throws {
        var tools: [String: String] = [:]
        for tool in ["patroni", "patronictl", "etcd"] {
            let path = Command.resolve(tool)
            guard FileManager.default.isExecutableFile(atPath: path) else {
                throw XCTSkip("\(tool) is not installed; scripts/test.sh installs the patroni and etcd-server packages")
            }
            tools[tool] = path
        }
        let bin: String
        do { bin = try PostgresCluster.binDirectory() } catch { throw XCTSkip("\(error)") }

        let mesh = try self.makeMesh(range: 120, nodes: ["app1", "db1"])
        let root = try PostgresCluster.makeRoot()
        let dataDirectory = root + "/data"
        self.addCleanup {
            // A paused Patroni leaves PostgreSQL running when it stops: stop it here, then remove it all.
            _ = try? Command.run(
                "/usr/sbin/runuser",
                ["-u", PostgresCluster.osUser, "--", bin + "/pg_ctl", "-D", dataDirectory, "-m", "immediate", "-w", "-t", "15", "stop"],
                timeout: .seconds(20)
            )
            PostgresCluster.removeRoot(root)
        }
        let local = "127.0.0.1"
        let etcdClient = try mesh.freePort(local)
        let etcdPeer = try mesh.freePort(local)
        let apiPort = try mesh.freePort(local)
        let pgPort = try mesh.freePort(local)
        let asPostgres = [
            "/usr/bin/setpriv", "--reuid=\(PostgresCluster.osUser)", "--regid=\(PostgresCluster.osUser)", "--init-groups", "--",
        ]

        let etcd = try mesh.spawn(
            label: "etcd",
            executable: tools["etcd"]!,
            arguments: [
                "--name", "e1", "--data-dir", root + "/etcd",
                "--listen-client-urls", "http://\(local):\(etcdClient)", "--advertise-client-urls", "http://\(local):\(etcdClient)",
                "--listen-peer-urls", "http://\(local):\(etcdPeer)", "--initial-advertise-peer-urls", "http://\(local):\(etcdPeer)",
                "--initial-cluster", "e1=http://\(local):\(etcdPeer)", "--initial-cluster-state", "new",
            ]
        )
        XCTAssertNotNil(etcd.waitForLog(containing: "ready to serve client requests", timeout: .seconds(30)), etcd.logTail())

        let patroniConfig = root + "/patroni.yml"
        try """
        scope: tunnelmesh-test
        name: \(Self.member)
        restapi:
          listen: \(local):\(apiPort)
          connect_address: \(local):\(apiPort)
        etcd3:
          hosts: \(local):\(etcdClient)
        bootstrap:
          dcs:
            ttl: 20
            loop_wait: 1
            retry_timeout: 5
          initdb:
            - encoding: UTF8
            - auth: trust
        postgresql:
          listen: \(local):\(pgPort)
          connect_address: \(local):\(pgPort)
          data_dir: \(dataDirectory)
          bin_dir: \(bin)
          pgpass: \(root)/pgpass
          authentication:
            superuser: { username: postgres, password: unused }
            replication: { username: replicator, password: unused }
          pg_hba:
            - local all all trust
            - host all all 127.0.0.1/32 trust
            - host replication all 127.0.0.1/32 trust
          parameters:
            unix_socket_directories: \(root)
            fsync: "off"
            shared_buffers: 16MB
            max_connections: 30
            max_wal_senders: 5
            max_replication_slots: 5

        """.write(toFile: patroniConfig, atomically: false, encoding: .utf8)
        try Command.check("/bin/chown", ["\(PostgresCluster.osUser):", patroniConfig])
        let patroni = try mesh.spawn(
            label: "patroni",
            executable: tools["patroni"]!,
            arguments: [patroniConfig],
            launcher: asPostgres
        )
        guard patroni.waitForLog(containing: "the leader with the lock", timeout: .seconds(90)) != nil else {
            return XCTFail("Patroni did not take the leader lock\n\(patroni.logTail())\n\(etcd.logTail())")
        }

        let app1 = mesh.host("app1")
        let rw = try mesh.freePort(app1)
        mesh.file.services["postgres"] = .init(
            on: ["db1": "\(local):\(pgPort)"],
            allow: ["app1"],
            postgres: .init(monitorUser: PostgresCluster.superuser, probeInterval: "500ms", patroni: "patroni-api")
        )
        mesh.file.services["patroni-api"] = .init(on: ["db1": "\(local):\(apiPort)"], allow: [])
        mesh.file.balancers = ["pg": .init(service: "postgres", on: ["app1": .init(rw: "\(app1):\(rw)")])]
        let config = try mesh.writeConfig()
        let db1 = try mesh.start("db1", config: config)
        let balancer = try mesh.start("app1", config: config)
        guard mesh.waitUp(balancer, peer: "db1") else { return }
        XCTAssertNotNil(db1.waitForLog(containing: "and Patroni at \(local):\(apiPort)", timeout: .seconds(10)), db1.logTail())

        let running = self.waitForRow(mesh) { $0["patroni_state"] as? String == "running" && $0["role"] as? String == "primary" }
        XCTAssertEqual(running?["patroni_role"] as? String, "leader", "\(String(describing: running))\n\(mesh.allLogs())")
        XCTAssertEqual(running?["patroni_leader"] as? String, Self.member)
        XCTAssertEqual(running?["patroni_paused"] as? Bool, false)
        let text = try mesh.meshctl("app1", ["backends"])
        XCTAssertTrue(text.stdout.contains("DCS leader: \(Self.member)"), text.stdout)
        let psql = bin + "/psql"
        let conninfo = "host=\(app1) port=\(rw) user=postgres dbname=postgres sslmode=disable connect_timeout=10"
        let served = try Command.run(
            psql,
            ["-X", "-A", "-t", "-d", conninfo, "-c", "SELECT current_setting('port')"],
            timeout: .seconds(20)
        )
        XCTAssertEqual(served.stdout.trimmingCharacters(in: .whitespacesAndNewlines), "\(pgPort)", served.stderr)

        // Patroni keeps its hands off while paused, so the PostgreSQL it manages stays stopped.
        try Command.check(
            "/usr/sbin/runuser",
            ["-u", PostgresCluster.osUser, "--", tools["patronictl"]!, "-c", patroniConfig, "pause", "--wait"],
            timeout: .seconds(30)
        )
        try Command.check(
            "/usr/sbin/runuser",
            ["-u", PostgresCluster.osUser, "--", bin + "/pg_ctl", "-D", dataDirectory, "-m", "fast", "-w", "-t", "30", "stop"],
            timeout: .seconds(40)
        )
        let stopped = self.waitForRow(mesh) { $0["patroni_state"] as? String == "stopped" }
        XCTAssertNotNil(stopped, mesh.allLogs())
        XCTAssertEqual(stopped?["patroni_paused"] as? Bool, true)
        XCTAssertEqual(stopped?["healthy"] as? Bool, false)
        let refused = try Command.run(psql, ["-X", "-A", "-t", "-d", conninfo, "-c", "SELECT 1"], timeout: .seconds(20))
        XCTAssertNotEqual(refused.status, 0, refused.stdout)
        XCTAssertTrue(refused.stderr.contains("no primary available"), refused.stderr)
        XCTAssertTrue(refused.stderr.contains("PostgreSQL stopped per Patroni"), refused.stderr)
        let metrics = try mesh.meshctl("app1", ["backends"])
        XCTAssertTrue(metrics.stdout.contains("stopped paused"), metrics.stdout)
    }

    /// Polls app1's `meshctl backends --json` every 200 ms, at most 30 s, for db1's row matching `condition`.
    private func waitForRow(_ mesh: TestMesh, _ condition: ([String: Any]) -> Bool) -> [String: Any]? {
        let deadline = ContinuousClock.now + .seconds(30)
        while ContinuousClock.now < deadline {
            if let result = try? mesh.meshctl("app1", ["backends", "--json"], timeout: .seconds(10)),
                let rows = try? JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [[String: Any]],
                let row = rows.first(where: { $0["node"] as? String == "db1" }), condition(row)
            {
                return row
            }
            Thread.sleep(forTimeInterval: 0.2)
        }
        return nil
    }
}
