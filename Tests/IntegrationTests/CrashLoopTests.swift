import Foundation
import MeshTestSupport
import XCTest

/// A crash loop under load: a balancer whose `ro` has two standbys (db2, db3), and db3's meshd
/// killed with SIGKILL five times during a 30 s `pgbench -S` through the ro listener, restarted
/// after a short pause each time. The sessions on the untouched standby never fail, new
/// connections keep succeeding, and the surviving agents' memory does not grow round to round
/// (each survivor redials its tunnel to db3 every round).
final class CrashLoopTests: MeshTestCase {
    /// What one kill-and-restart round measured.
    private struct Round {
        var downAfter: Duration?
        var servedAfterKill: Duration?
        var servedAfterRestart: Duration?
        /// RSS of app1, db1 and db2's meshd after the round, in bytes.
        var resident: [Int]
    }

    /// Held sessions: `pgbench -S -c 8` (no -C) for 30 s, tagged application_name=held; the
    /// balancer spreads them over db2 and db3. Their backend pids on db2 are checked after every
    /// round (a session cut and reopened would show a new pid; pgbench does not reopen anyway), and
    /// at the end pgbench must have aborted exactly the clients that were on db3.
    /// New connections: back-to-back `pgbench -S -C` runs, every attempt and failure counted.
    func testStandbyAgentKilledFiveTimesDuringPgbench() throws {
        let fixture = try BalancerFixture(test: self, range: 90, databases: 3)
        try fixture.start()
        guard fixture.waitRouted(primary: "db1", readers: ["db2", "db3"]) else {
            return XCTFail("ro never reached both standbys\n\(fixture.logs())")
        }
        let rw = ["-h", fixture.rw.host, "-p", "\(fixture.rw.port)", "-U", "postgres"]
        let ro = ["-h", fixture.ro.host, "-p", "\(fixture.ro.port)", "-U", "postgres"]
        let initialize = try Command.run(fixture.pgbenchPath, ["-i", "-s", "1", "-q"] + rw + ["postgres"], timeout: .seconds(120))
        XCTAssertEqual(initialize.status, 0, initialize.output)
        for standby in ["db2", "db3"] {
            XCTAssertTrue(
                fixture.wait(timeout: .seconds(15)) {
                    (try? fixture.cluster(standby).sql("SELECT count(*) FROM pgbench_branches")) == "1"
                },
                "\(standby) replayed pgbench -i"
            )
        }

        let app1 = try XCTUnwrap(fixture.app1)
        let survivors = [app1, try XCTUnwrap(fixture.databaseNodes["db1"]), try XCTUnwrap(fixture.databaseNodes["db2"])]
        var db3 = try XCTUnwrap(fixture.databaseNodes["db3"])
        let config = fixture.mesh.root.appendingPathComponent("mesh.json")
        let heldPids = { (node: String) -> Set<Int> in
            let text = (try? fixture.cluster(node).sql("SELECT pid FROM pg_stat_activity WHERE application_name = 'held'")) ?? ""
            return Set(text.split(separator: "\n").compactMap { Int($0) })
        }

        // pgbench takes a conninfo string as its database name (libpq's expand_dbname).
        let benchStart = ContinuousClock.now
        let held = try Command.start(
            fixture.pgbenchPath,
            ["-n", "-S", "-c", "8", "-j", "2", "-T", "30", "-R", "400"] + ro + ["dbname=postgres application_name=held"]
        )
        XCTAssertTrue(
            fixture.wait(timeout: .seconds(15)) { heldPids("db2").count + heldPids("db3").count == 8 },
            "8 held sessions on db2 and db3\n\(fixture.logs())"
        )
        let onDB2 = heldPids("db2")
        let onDB3 = heldPids("db3")
        XCTAssertFalse(onDB2.isEmpty, "some held sessions on db2")
        XCTAssertFalse(onDB3.isEmpty, "some held sessions on db3, so the kill cuts something")

        let churn = ConnectionChurn(
            pgbench: fixture.pgbenchPath,
            arguments: ["-n", "-S", "-C", "-c", "2", "-j", "1", "-t", "100"] + ro + ["dbname=postgres application_name=churn"]
        )
        self.addCleanup { _ = churn.stop() }

        var rounds: [Round] = []
        for round in 1...5 {
            // A kill every 5 s from 3 s into the run: 3, 8, 13, 18, 23. A round (down, 1 s pause,
            // restart, served again) took 2.1-3.3 s; one that runs late delays the next kill only.
            let killAt = benchStart + .seconds(3 + 5 * (round - 1))
            if ContinuousClock.now < killAt { Thread.sleep(forTimeInterval: Double((killAt - ContinuousClock.now).milliseconds) / 1000) }
            let mark = app1.logMark()
            let killed = ContinuousClock.now
            db3.kill9()
            XCTAssertFalse(db3.isRunning, "round \(round): db3 killed")
            let down = app1.waitForLog(containing: "peer db3 down", after: mark, timeout: .seconds(5))
            let downAfter = down.map { _ in ContinuousClock.now - killed }
            XCTAssertNotNil(down, "round \(round): app1 reported db3 down\n\(app1.logTail())")
            let pause = killed + .seconds(1) - ContinuousClock.now
            if pause > .zero { Thread.sleep(forTimeInterval: Double(pause.milliseconds) / 1000) }

            db3 = try fixture.mesh.start("db3", config: config)
            let restarted = ContinuousClock.now
            let served = fixture.wait(timeout: .seconds(20)) { fixture.servedBy(.ro) == "db3" }
            let servedAt = ContinuousClock.now
            XCTAssertTrue(served, "round \(round): ro reached db3 again within 20 s of its restart\n\(fixture.logs())")
            XCTAssertEqual(heldPids("db2"), onDB2, "round \(round): every held session on db2 is still there")
            let resident = survivors.map { $0.residentBytes() ?? -1 }
            rounds.append(
                Round(
                    downAfter: downAfter,
                    servedAfterKill: served ? servedAt - killed : nil,
                    servedAfterRestart: served ? servedAt - restarted : nil,
                    resident: resident
                )
            )
            print(
                "round \(round): db3 down after \(downAfter?.milliseconds ?? -1) ms, served again \((servedAt - killed).milliseconds) ms after the kill "
                    + "(\((servedAt - restarted).milliseconds) ms after the restart); \(churn.current); RSS app1/db1/db2 \(resident.map(Self.mebibytes))"
            )
        }

        let heldResult = held.wait(timeout: .seconds(60))
        XCTAssertFalse(heldResult.timedOut, "the held pgbench ended")
        let tally = churn.stop()
        let aborted = heldResult.stderr.split(separator: "\n").filter {
            $0.range(of: #"client [0-9]+ aborted"#, options: .regularExpression) != nil
        }
        let heldProcessed = ConnectionChurn.processed(in: heldResult.stdout) ?? 0

        // Held sessions: exactly the ones on db3 were cut (in round 1), none on db2.
        XCTAssertEqual(aborted.count, onDB3.count, "pgbench aborted only db3's held clients\n\(heldResult.output)")
        XCTAssertEqual(heldResult.status, 2, "pgbench reports the aborted clients with exit status 2\n\(heldResult.output)")
        XCTAssertGreaterThan(heldProcessed, 1000, heldResult.stdout)

        // New connections: only those a kill caught failed. A kill can cut what pgbench had in
        // flight through db3 (its two clients, -c 2) and the next run's first connection if it
        // came before app1 saw db3 go: at most 3 a kill, 15 in all, however many attempts the
        // machine managed around them. (This was "under 1% of attempts", which tied the bound to
        // the machine's speed: 5-7 failures are usual, and a loaded host making 544 attempts in
        // the 30 s failed a clean-clone CI run with 7.) Enough attempts must have run for the
        // count to mean something: a debug build manages 25-40 a second (800-1,150 in the 30 s),
        // 12-17 while other work shares the machine.
        XCTAssertGreaterThanOrEqual(tally.attempts, 150, "\(tally)")
        XCTAssertLessThanOrEqual(tally.failures, 3 * rounds.count, "\(tally)\n\(tally.errors.joined(separator: "\n"))")
        print("new connections during the kills: \(tally)")

        // Memory: each surviving meshd after round 5 within 1 MiB of its size after round 1. Every
        // round each survivor loses and redials its tunnel to db3; when closed tunnels leaked
        // (~350 KiB each) this grew 1.7-1.9 MiB over the four rounds, and now ~0.1 MiB.
        let names = ["app1", "db1", "db2"]
        if let first = rounds.first?.resident, let last = rounds.last?.resident {
            for (index, name) in names.enumerated() {
                XCTAssertGreaterThan(first[index], 0, "\(name) RSS readable")
                XCTAssertLessThanOrEqual(
                    last[index],
                    first[index] + 1 << 20,
                    "\(name) RSS grew: \(rounds.map { Self.mebibytes($0.resident[index]) })"
                )
            }
        }
        XCTAssertTrue(survivors.allSatisfy(\.isRunning), "the surviving agents are still running")

        let ms = { (values: [Duration?]) in "[" + values.map { "\($0?.milliseconds ?? -1)" }.joined(separator: ",") + "]" }
        let rss = names.enumerated().map { index, name in
            "rss_\(name)_mib=[" + rounds.map { Self.mebibytes($0.resident[index]) }.joined(separator: ",") + "]"
        }.joined(separator: " ")
        print(
            "RESULT crashloop kills=\(rounds.count) held_sessions=\(onDB2.count + onDB3.count) held_on_db2=\(onDB2.count) "
                + "held_on_db3=\(onDB3.count) held_aborted=\(aborted.count) held_transactions=\(heldProcessed) "
                + "c_attempts=\(tally.attempts) c_failures=\(tally.failures) c_error_rate="
                + String(format: "%.3f%%", tally.errorRate * 100)
                + " down_ms=\(ms(rounds.map(\.downAfter))) served_after_kill_ms=\(ms(rounds.map(\.servedAfterKill))) "
                + "served_after_restart_ms=\(ms(rounds.map(\.servedAfterRestart))) \(rss)"
        )
        if !tally.errors.isEmpty { print("-C errors (first \(tally.errors.count)):\n" + tally.errors.joined(separator: "\n")) }
    }

    private static func mebibytes(_ bytes: Int) -> String { String(format: "%.1f", Double(bytes) / 1_048_576) }
}
