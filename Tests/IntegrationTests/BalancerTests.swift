import Foundation
import MeshTestSupport
import XCTest

/// The PostgreSQL balancer end to end: real PostgreSQL primaries and standbys behind db nodes,
/// real meshd processes, psql and pgbench as the clients, app1's `pg` balancer in between.
final class BalancerTests: MeshTestCase {
    func testRWReachesThePrimaryAndROTheStandby() throws {
        let fixture = try BalancerFixture(test: self, range: 70)
        try fixture.start()
        XCTAssertTrue(fixture.waitRouted(primary: "db1", readers: ["db2"]), fixture.logs())
        XCTAssertEqual(try fixture.psql(.rw, "SELECT pg_is_in_recovery()").stdout, "f\n")
        XCTAssertEqual(try fixture.psql(.ro, "SELECT pg_is_in_recovery()").stdout, "t\n")
        let write = try fixture.psql(.rw, "CREATE TABLE t (x int); INSERT INTO t VALUES (42);")
        XCTAssertEqual(write.status, 0, write.output)
        XCTAssertTrue(fixture.wait(timeout: .seconds(10)) { (try? fixture.psql(.ro, "SELECT x FROM t"))?.stdout == "42\n" })
        let readOnly = try fixture.psql(.ro, "INSERT INTO t VALUES (1)")
        XCTAssertNotEqual(readOnly.status, 0)
        XCTAssertTrue(readOnly.stderr.contains("read-only transaction"), readOnly.stderr)

        // What the agent shows: meshctl backends and /metrics read the same registry.
        let backends = try fixture.mesh.meshctl("app1", ["backends"])
        XCTAssertEqual(backends.status, 0, backends.output)
        let rows = backends.stdout.split(separator: "\n").map { $0.split(separator: " ", omittingEmptySubsequences: true).map(String.init) }
        XCTAssertEqual(rows.first?.prefix(4), ["NODE", "ROLE", "STATE", "TIMELINE"], backends.stdout)
        XCTAssertTrue(rows.contains { $0.prefix(4) == ["db1", "primary", "up", "1"] }, backends.stdout)
        XCTAssertTrue(rows.contains { $0.prefix(4) == ["db2", "standby", "up", "1"] }, backends.stdout)
        let metrics = try Command.run(
            "/usr/bin/curl",
            ["-s", "--unix-socket", fixture.mesh.controlPath("app1"), "http://meshd/metrics"],
            timeout: .seconds(10)
        )
        XCTAssertTrue(metrics.stdout.contains(#"meshd_backend_role{balancer="pg",node="db1"} 1"#), metrics.stdout)
        XCTAssertTrue(metrics.stdout.contains(#"meshd_backend_up{balancer="pg",node="db2"} 1"#), metrics.stdout)
        XCTAssertTrue(
            metrics.stdout.contains(#"meshd_balancer_connections_total{balancer="pg",listener="rw",node="db1",result="routed"}"#),
            metrics.stdout
        )
    }

    /// 400 short ro sessions (pgbench -C) over two standbys split within +-20% (a fair split misses
    /// that by chance once in ~10^4 runs: 4 standard deviations), counted by each standby's own
    /// pg_stat_database.sessions.
    func testReadsSplitBetweenTwoStandbys() throws {
        let fixture = try BalancerFixture(test: self, range: 71, databases: 3)
        try fixture.start()
        XCTAssertTrue(fixture.waitRouted(primary: "db1", readers: ["db2", "db3"]), fixture.logs())
        let initialize = try Command.run(
            fixture.pgbenchPath,
            ["-i", "-s", "1", "-q", "-h", fixture.rw.host, "-p", "\(fixture.rw.port)", "-U", "postgres", "postgres"],
            timeout: .seconds(120)
        )
        XCTAssertEqual(initialize.status, 0, initialize.output)
        XCTAssertTrue(
            fixture.wait(timeout: .seconds(10)) {
                (try? fixture.cluster("db3").sql("SELECT count(*) FROM pgbench_branches")) == "1"
            }
        )
        let sessions = { (node: String) -> Int in
            Int((try? fixture.cluster(node).sql("SELECT sessions FROM pg_stat_database WHERE datname = 'postgres'")) ?? "") ?? -1
        }
        let before = (sessions("db2"), sessions("db3"))
        let bench = try Command.run(
            fixture.pgbenchPath,
            [
                "-n", "-C", "-S", "-c", "4", "-j", "2", "-t", "100", "-h", fixture.ro.host, "-p", "\(fixture.ro.port)", "-U", "postgres",
                "postgres",
            ],
            timeout: .seconds(300)
        )
        XCTAssertEqual(bench.status, 0, bench.output)
        XCTAssertTrue(bench.stdout.contains("number of failed transactions: 0") || !bench.stdout.contains("failed"), bench.stdout)
        // Each backend adds itself to pg_stat_database when its stats are flushed (within a second).
        XCTAssertTrue(fixture.wait(timeout: .seconds(10)) { sessions("db2") - before.0 + sessions("db3") - before.1 >= 400 })
        let db2 = sessions("db2") - before.0
        let db3 = sessions("db3") - before.1
        print("400 ro sessions: db2 \(db2), db3 \(db3)")
        XCTAssertGreaterThanOrEqual(db2 + db3, 400)
        XCTAssertLessThanOrEqual(db2 + db3, 420, "only the probes' and a few checks' sessions on top")
        XCTAssertTrue((160...240).contains(db2), "db2 got \(db2) of 400")
        XCTAssertTrue((160...240).contains(db3), "db3 got \(db3) of 400")
    }

    /// A standby whose replay is paused gets no new reads; resumed, it gets them again. Existing
    /// sessions on it stay.
    func testPausedStandbyIsAvoidedUntilResumed() throws {
        let fixture = try BalancerFixture(test: self, range: 72, databases: 3, maxLag: "1s")
        try fixture.start()
        XCTAssertTrue(fixture.waitRouted(primary: "db1", readers: ["db2", "db3"]), fixture.logs())
        try fixture.cluster("db2").sql("SELECT pg_wal_replay_pause()")
        try fixture.cluster("db1").sql("CREATE TABLE moving (x int); INSERT INTO moving VALUES (1)")
        XCTAssertTrue(fixture.wait(timeout: .seconds(10)) { fixture.backendShowsPaused("db2") }, fixture.logs())
        let served = (0..<20).compactMap { _ in fixture.servedBy(.ro) }
        XCTAssertEqual(served.count, 20)
        XCTAssertEqual(Set(served), ["db3"], "reads avoid the paused standby: \(served)")

        try fixture.cluster("db2").sql("SELECT pg_wal_replay_resume()")
        XCTAssertTrue(
            fixture.wait(timeout: .seconds(10)) {
                (0..<10).compactMap { _ in fixture.servedBy(.ro) }.contains("db2")
            },
            "db2 takes reads again after resuming\n\(fixture.logs())"
        )
    }

    /// A standby that stops receiving WAL (its primary_conninfo cleared) while the primary keeps
    /// committing falls behind past max_lag: new reads avoid it; reconnected, it catches up and
    /// takes reads again.
    func testLaggingStandbyIsAvoidedUntilItCatchesUp() throws {
        let fixture = try BalancerFixture(test: self, range: 85, databases: 3, maxLag: "2s")
        try fixture.start()
        XCTAssertTrue(fixture.waitRouted(primary: "db1", readers: ["db2", "db3"]), fixture.logs())
        let primary = fixture.cluster("db1")
        let lagging = fixture.cluster("db2")
        try primary.sql("CREATE TABLE ticks (at timestamptz)")
        try primary.sql("INSERT INTO ticks VALUES (now())")
        XCTAssertTrue(fixture.wait(timeout: .seconds(10)) { (try? lagging.sql("SELECT count(*) FROM ticks")) == "1" })
        let conninfo = try lagging.sql("SHOW primary_conninfo")
        try lagging.sql("ALTER SYSTEM SET primary_conninfo = ''")
        try lagging.sql("SELECT pg_reload_conf()")
        // The primary goes on committing; db2's last replayed commit ages past max_lag (2 s).
        var avoided = false
        for _ in 0..<40 where !avoided {
            try primary.sql("INSERT INTO ticks VALUES (now())")
            Thread.sleep(forTimeInterval: 0.25)
            let served = (0..<6).compactMap { _ in fixture.servedBy(.ro) }
            avoided = served.count == 6 && Set(served) == ["db3"]
        }
        XCTAssertTrue(avoided, "reads avoid the lagging db2\n\(fixture.logs())")
        XCTAssertNotEqual(try lagging.sql("SELECT pg_is_wal_replay_paused()"), "t", "lag, not a pause, made the difference")

        try lagging.sql("ALTER SYSTEM SET primary_conninfo = '\(conninfo.replacingOccurrences(of: "'", with: "''"))'")
        try lagging.sql("SELECT pg_reload_conf()")
        XCTAssertTrue(
            fixture.wait(timeout: .seconds(20)) {
                (0..<10).compactMap { _ in fixture.servedBy(.ro) }.contains("db2")
            },
            "db2 takes reads again once it has caught up\n\(fixture.logs())"
        )
    }

    /// With ro_fallback "none" and the only standby paused, reads are refused with 57P03 naming why.
    func testReadsRefusedWhenNoStandbyQualifies() throws {
        let fixture = try BalancerFixture(test: self, range: 73, roFallback: "none")
        try fixture.start()
        XCTAssertTrue(fixture.waitRouted(primary: "db1", readers: ["db2"]), fixture.logs())
        try fixture.cluster("db2").sql("SELECT pg_wal_replay_pause()")
        var refusal: CommandResult?
        XCTAssertTrue(
            fixture.wait(timeout: .seconds(10)) {
                refusal = try? fixture.psql(.ro, "SELECT 1")
                return refusal?.status != 0
            }
        )
        let text = refusal?.stderr ?? ""
        XCTAssertTrue(text.contains("tunnelmesh: no standby available for \"pg\""), text)
        XCTAssertTrue(text.contains("db2: standby, replay paused"), text)
        XCTAssertEqual(try fixture.psql(.rw, "SELECT 1").stdout, "1\n", "rw is unaffected")
    }

    /// Promote the standby while the old primary still runs (on timeline 1): rw follows the new
    /// primary on timeline 2 within a few probe intervals, the old primary's rw sessions are cut at
    /// once, and the node still claiming primary on the lower timeline is never chosen again.
    func testFailoverFollowsThePromotedStandbyAndCutsOldSessions() throws {
        let fixture = try BalancerFixture(test: self, range: 74)
        try fixture.start()
        XCTAssertTrue(fixture.waitRouted(primary: "db1", readers: ["db2"]), fixture.logs())

        // A session held open on db1 through rw: psql reads statements from a slow pipe.
        let held = try HeldPsql(psql: fixture.psqlPath, host: fixture.rw.host, port: fixture.rw.port)
        defer { held.stop() }
        XCTAssertEqual(held.run("SELECT current_setting('port')"), "\(fixture.cluster("db1").port)")

        try fixture.cluster("db2").promote()
        let start = ContinuousClock.now
        XCTAssertTrue(fixture.wait(timeout: .seconds(10)) { fixture.servedBy(.rw) == "db2" }, fixture.logs())
        print("rw followed the promotion in \(ContinuousClock.now - start)")
        let write = try fixture.psql(.rw, "CREATE TABLE after_failover (x int); SELECT pg_is_in_recovery()")
        XCTAssertEqual(write.stdout, "f\n", write.output)
        XCTAssertNil(held.run("SELECT 1", timeout: .seconds(5)), "the rw session on the demoted db1 was cut")
        // The held session, and any checking session that was still on db1 at that moment.
        XCTAssertNotNil(
            fixture.app1!.log().range(of: #"cut [0-9]+ rw session\(s\) on db1: db2 is now the primary"#, options: .regularExpression),
            fixture.app1!.logTail()
        )
        // db1 still runs and still says primary, on timeline 1: never chosen.
        XCTAssertEqual(try fixture.cluster("db1").sql("SELECT pg_is_in_recovery()"), "f")
        let served = (0..<10).compactMap { _ in fixture.servedBy(.rw) }
        XCTAssertEqual(Set(served), ["db2"], "\(served)")
    }

    /// Stop the primary, then promote: rw refuses with the documented message while there is no
    /// primary, then works on the new one within 3 probe intervals of the promotion.
    func testPrimaryDownThenPromotion() throws {
        let fixture = try BalancerFixture(test: self, range: 75)
        try fixture.start()
        XCTAssertTrue(fixture.waitRouted(primary: "db1", readers: ["db2"]), fixture.logs())
        fixture.cluster("db1").stop()
        var refusal = ""
        XCTAssertTrue(
            fixture.wait(timeout: .seconds(10)) {
                refusal = (try? fixture.psql(.rw, "SELECT 1"))?.stderr ?? ""
                return refusal.contains("tunnelmesh: no primary available for \"pg\"")
            },
            refusal
        )
        XCTAssertTrue(refusal.contains("db1: down since"), refusal)
        XCTAssertTrue(refusal.contains("db2: standby"), refusal)

        try fixture.cluster("db2").promote()
        let promoted = ContinuousClock.now
        XCTAssertTrue(fixture.wait(timeout: .seconds(10)) { fixture.servedBy(.rw) == "db2" }, fixture.logs())
        let took = ContinuousClock.now - promoted
        print("rw works on the promoted standby \(took) after pg_ctl promote returned")
        XCTAssertEqual(try fixture.psql(.rw, "CREATE TABLE t (x int); SELECT pg_is_in_recovery()").stdout, "f\n")
    }

    /// Two independent clusters both claiming primary on timeline 1: rw is refused as a split brain.
    func testSplitBrainRefusesWrites() throws {
        let fixture = try BalancerFixture(test: self, range: 76, independent: true)
        try fixture.start()
        var refusal = ""
        XCTAssertTrue(
            fixture.wait(timeout: .seconds(15)) {
                refusal = (try? fixture.psql(.rw, "SELECT 1"))?.stderr ?? ""
                return refusal.contains("split brain")
            },
            "\(refusal)\n\(fixture.logs())"
        )
        XCTAssertTrue(
            refusal.contains(
                "tunnelmesh: no primary available for \"pg\" (db1: primary on timeline 1, db2: primary on timeline 1: split brain)"
            ),
            refusal
        )
    }

    /// psql's cancel (SIGINT sends a CancelRequest on a new connection) reaches the PostgreSQL that
    /// runs the query: the front door routes the key to the node whose backend issued it.
    func testCancelReachesTheBackendThroughTheBalancer() throws {
        let fixture = try BalancerFixture(test: self, range: 81)
        try fixture.start()
        XCTAssertTrue(fixture.waitRouted(primary: "db1", readers: ["db2"]), fixture.logs())
        for listener in [BalancerFixture.Listener.rw, .ro] {
            let target = listener == .rw ? fixture.rw : fixture.ro
            let psql = try Command.start(
                fixture.psqlPath,
                [
                    "-X", "-d", "host=\(target.host) port=\(target.port) user=postgres dbname=postgres sslmode=disable", "-c",
                    "SELECT pg_sleep(30)",
                ]
            )
            let server = fixture.cluster(listener == .rw ? "db1" : "db2")
            XCTAssertTrue(
                fixture.wait(timeout: .seconds(10)) {
                    (try? server.sql("SELECT count(*) FROM pg_stat_activity WHERE state = 'active' AND query = 'SELECT pg_sleep(30)'"))
                        == "1"
                },
                "\(listener): the query is running"
            )
            let interrupted = ContinuousClock.now
            psql.signal(SIGINT)
            let result = psql.wait(timeout: .seconds(20))
            let took = ContinuousClock.now - interrupted
            let text = result.stderr
            print("\(listener) query cancelled \(took) after SIGINT")
            XCTAssertTrue(text.contains("canceling statement due to user request"), "\(listener): \(text)\n\(fixture.logs())")
            XCTAssertLessThan(took, .seconds(15), "\(listener): the query was cancelled, not run to its end")
        }
    }

    /// A balancer on a database node itself: rw reaches its own PostgreSQL without a tunnel, ro the
    /// standby's through one; cancel works on the local route too.
    func testBalancerOnADatabaseNode() throws {
        let fixture = try BalancerFixture(test: self, range: 82)
        let host = fixture.mesh.host("db1")
        let rw = try fixture.mesh.freePort(host)
        let ro = try fixture.mesh.freePort(host)
        fixture.mesh.file.balancers?["pg"]?.on["db1"] = .init(rw: "\(host):\(rw)", ro: "\(host):\(ro)")
        fixture.mesh.file.services["postgres"]?.allow = ["app1", "db1"]
        try fixture.start()
        XCTAssertTrue(fixture.waitRouted(primary: "db1", readers: ["db2"]), fixture.logs())
        let port = { (listener: Int) -> String? in
            let result = try? Command.run(
                fixture.psqlPath,
                [
                    "-X", "-A", "-t", "-d", "host=\(host) port=\(listener) user=postgres dbname=postgres sslmode=disable", "-c",
                    "SELECT current_setting('port')",
                ],
                timeout: .seconds(10)
            )
            return result?.status == 0 ? result?.stdout.trimmingCharacters(in: .whitespacesAndNewlines) : nil
        }
        XCTAssertTrue(fixture.wait(timeout: .seconds(10)) { port(rw) == "\(fixture.cluster("db1").port)" }, fixture.logs())
        XCTAssertTrue(fixture.wait(timeout: .seconds(10)) { port(ro) == "\(fixture.cluster("db2").port)" }, fixture.logs())
    }

    /// `meshctl reload` moves the ro listener and switches ro_fallback to none: the old address is
    /// closed, the new one serves, and the new fallback applies to the next connection.
    func testReloadMovesAListenerAndAppliesSettings() throws {
        let fixture = try BalancerFixture(test: self, range: 84)
        try fixture.start()
        XCTAssertTrue(fixture.waitRouted(primary: "db1", readers: ["db2"]), fixture.logs())
        let host = fixture.mesh.host("app1")
        let moved = try fixture.mesh.freePort(host)
        fixture.mesh.file.balancers?["pg"]?.on["app1"]?.ro = "\(host):\(moved)"
        fixture.mesh.file.balancers?["pg"]?.roFallback = "none"
        try fixture.mesh.writeConfig()
        let reload = try fixture.mesh.meshctl("app1", ["reload"])
        XCTAssertEqual(reload.status, 0, reload.output)
        XCTAssertThrowsError(try TCPSocket.connect(host: host, port: fixture.ro.port, timeout: .seconds(1)), "the old ro address is closed")
        try fixture.cluster("db2").sql("SELECT pg_wal_replay_pause()")
        var refusal = ""
        XCTAssertTrue(
            fixture.wait(timeout: .seconds(10)) {
                let result = try? Command.run(
                    fixture.psqlPath,
                    ["-X", "-A", "-t", "-d", "host=\(host) port=\(moved) user=postgres dbname=postgres sslmode=disable", "-c", "SELECT 1"],
                    timeout: .seconds(10)
                )
                refusal = result?.stderr ?? ""
                return refusal.contains("tunnelmesh: no standby available for \"pg\"")
            },
            "ro_fallback none applies after the reload: \(refusal)\n\(fixture.logs())"
        )
        XCTAssertEqual(try fixture.psql(.rw, "SELECT 1").stdout, "1\n", "rw untouched by the reload")
    }

    /// SCRAM stays between psql and PostgreSQL: the right password logs in, a wrong one gets
    /// PostgreSQL's own error.
    func testSCRAMAuthenticationThroughTheBalancer() throws {
        let fixture = try BalancerFixture(
            test: self,
            range: 77,
            hba: ["host all app 127.0.0.1/32 scram-sha-256"]
        )
        try fixture.cluster("db1").sql("SET password_encryption = 'scram-sha-256'; CREATE ROLE app LOGIN PASSWORD 's3cret-pw';")
        try fixture.start()
        XCTAssertTrue(fixture.waitRouted(primary: "db1", readers: ["db2"]), fixture.logs())
        let good = try fixture.psql(.rw, "SELECT current_user", user: "app", password: "s3cret-pw")
        XCTAssertEqual(good.stdout, "app\n", good.output)
        let bad = try fixture.psql(.rw, "SELECT 1", user: "app", password: "wrong")
        XCTAssertNotEqual(bad.status, 0)
        XCTAssertTrue(bad.stderr.contains("password authentication failed for user \"app\""), bad.stderr)
        let standby = try fixture.psql(.ro, "SELECT current_user", user: "app", password: "s3cret-pw")
        XCTAssertEqual(standby.stdout, "app\n", "the role replicated to the standby: \(standby.output)")
    }

    /// sslmode=prefer falls back to plaintext on our 'N'; sslmode=require is refused by libpq itself.
    func testSSLModesWithoutBalancerTLS() throws {
        let fixture = try BalancerFixture(test: self, range: 78)
        try fixture.start()
        XCTAssertTrue(fixture.waitRouted(primary: "db1", readers: ["db2"]), fixture.logs())
        XCTAssertEqual(try fixture.psql(.rw, "SELECT 1", sslmode: "prefer").stdout, "1\n")
        let require = try fixture.psql(.rw, "SELECT 1", sslmode: "require")
        XCTAssertNotEqual(require.status, 0)
        XCTAssertTrue(require.stderr.contains("server does not support SSL, but SSL was required"), require.stderr)
    }

    /// With `balancers.pg.tls`, sslmode=require is served over TLS at the front door (and the
    /// session is still PostgreSQL's, end to end), and sslmode=disable still works.
    func testSSLRequireWithBalancerTLS() throws {
        let fixture = try BalancerFixture(test: self, range: 83, tls: .init(cert: "balancer.pem", key: "balancer.key"))
        let made = try Command.run(
            "/usr/bin/openssl",
            [
                "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-days", "2",
                "-subj", "/CN=localhost", "-addext", "subjectAltName=IP:\(fixture.rw.host)",
                "-keyout", fixture.mesh.root.appendingPathComponent("balancer.key").path,
                "-out", fixture.mesh.root.appendingPathComponent("balancer.pem").path,
            ]
        )
        XCTAssertEqual(made.status, 0, made.output)
        try fixture.start()
        XCTAssertTrue(fixture.waitRouted(primary: "db1", readers: ["db2"]), fixture.logs())
        let require = try fixture.psql(.rw, "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()", sslmode: "require")
        XCTAssertEqual(require.status, 0, require.output)
        XCTAssertEqual(require.stdout, "f\n", "TLS ends at the balancer; the hop to PostgreSQL is the tunnel")
        let verified = try fixture.psql(
            .ro,
            "SELECT pg_is_in_recovery()",
            sslmode: "verify-ca sslrootcert=\(fixture.mesh.root.appendingPathComponent("balancer.pem").path)"
        )
        XCTAssertEqual(verified.stdout, "t\n", verified.output)
        XCTAssertEqual(try fixture.psql(.rw, "SELECT 1", sslmode: "disable").stdout, "1\n")
    }

    /// pgbench's default TPC-B and -S run through rw for 3 s each without an error (thousands of
    /// transactions each, on 4 connections: pgbench fails the run on the first error).
    func testPgbenchThroughRW() throws {
        let fixture = try BalancerFixture(test: self, range: 79)
        try fixture.start()
        XCTAssertTrue(fixture.waitRouted(primary: "db1", readers: ["db2"]), fixture.logs())
        let target = ["-h", fixture.rw.host, "-p", "\(fixture.rw.port)", "-U", "postgres", "postgres"]
        let initialize = try Command.run(fixture.pgbenchPath, ["-i", "-s", "2", "-q"] + target, timeout: .seconds(120))
        XCTAssertEqual(initialize.status, 0, initialize.output)
        for mode in [["-S"], []] {
            let run = try Command.run(fixture.pgbenchPath, ["-n", "-c", "4", "-j", "2", "-T", "3"] + mode + target, timeout: .seconds(60))
            XCTAssertEqual(run.status, 0, run.output)
            XCTAssertTrue(run.stdout.contains("number of failed transactions: 0"), run.stdout)
            print("pgbench \(mode.isEmpty ? "TPC-B" : "-S") through rw:\n\(run.stdout)")
        }
    }

    /// Garbage, a truncated startup packet, a 1 GiB length prefix and an unknown protocol version
    /// each get an ErrorResponse or a close; the balancer serves a real client right after.
    func testBadInputAtTheFrontDoor() throws {
        let fixture = try BalancerFixture(test: self, range: 80)
        try fixture.start()
        XCTAssertTrue(fixture.waitRouted(primary: "db1", readers: ["db2"]), fixture.logs())
        let cases: [(String, [UInt8], String?)] = [
            ("garbage", Array("GET / HTTP/1.1\r\nHost: x\r\n\r\n".utf8), "08P01"),
            ("1 GiB length", [0x40, 0, 0, 0, 0, 3, 0, 0], "08P01"),
            ("unknown version", [0, 0, 0, 8, 0, 9, 0, 0], "0A000"),
            ("truncated", [0, 0, 0, 40, 0, 3, 0, 0, 0x75], nil),
        ]
        for (name, bytes, code) in cases {
            let socket = try TCPSocket.connect(host: fixture.rw.host, port: fixture.rw.port)
            defer { socket.close() }
            try socket.send(bytes)
            if code == nil { socket.shutdownWrite() }
            let reply = socket.readAll(timeout: .seconds(5))
            let text = String(decoding: reply.data, as: UTF8.self)
            if let code {
                XCTAssertEqual(reply.data.first, UInt8(ascii: "E"), "\(name): \(text)")
                XCTAssertTrue(text.contains(code), "\(name): \(text)")
            } else {
                XCTAssertTrue(reply.data.isEmpty || reply.data.first == UInt8(ascii: "E"), "\(name): \(text)")
            }
            XCTAssertNotEqual(reply.end, .timedOut, "\(name): the balancer closed the connection")
        }
        XCTAssertEqual(try fixture.psql(.rw, "SELECT 1").stdout, "1\n", "still serving")
        XCTAssertNotNil(fixture.app1?.isRunning == true ? fixture.app1 : nil)
    }
}
