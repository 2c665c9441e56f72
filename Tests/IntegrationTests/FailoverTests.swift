import Foundation
import MeshTestSupport
import XCTest

/// Automatic failover with Patroni and etcd, every byte of theirs carried by the mesh (`PatroniBed`):
/// a writer commits numbered rows through app1's `rw` and records every acknowledged id and the node
/// that took it. Whatever fails, writes come back through the same `rw` address, no acknowledged
/// commit is lost (synchronous_mode), and no two nodes ever take writes in turn and back.
///
/// Timings are printed (`RESULT ...`), never judged: scripts/bench/failover.sh measures them.
/// The bounds below only stop a test that would otherwise wait forever (Patroni's ttl is 20 s).
final class FailoverTests: NetnsTestCase {
    private static let failoverBound: Duration = .seconds(75)

    private func makePatroniBed() throws -> PatroniBed {
        try PatroniBed.checkInstalled()
        let bed = try self.makeBed(nodes: PatroniBed.nodes)
        let mesh = try self.makeMesh(bed: bed)
        let patroni = try PatroniBed(bed: bed, mesh: mesh)
        self.addCleanup { patroni.tearDown() }
        do {
            try patroni.start()
        } catch {
            print(patroni.logs())
            throw error
        }
        return patroni
    }

    private static var now: Double { Date().timeIntervalSince1970 }

    /// A planned switchover, then etcd losing a member, then the primary's whole node killed -9.
    func testSwitchoverEtcdMemberLossAndPrimaryNodeDeath() throws {
        let patroni = try self.makePatroniBed()
        let first = try XCTUnwrap(patroni.leader(), "a leader after start")
        // app1's balancer shows what each node's Patroni says, and the DCS leader, beside
        // PostgreSQL's own role (which routing follows).
        let standbyRoles = { (view: [String: PatroniBed.Backend]) in
            Set(PatroniBed.databases.filter { $0 != first }.compactMap { view[$0]?.patroniRole })
        }
        let shown = patroni.waitForBackends(timeout: .seconds(20)) { view in
            PatroniBed.databases.allSatisfy { view[$0]?.patroniLeader == first } && standbyRoles(view) == ["sync_standby", "replica"]
        }
        XCTAssertEqual(shown[first]?.patroniRole, "leader", "meshctl backends on app1: \(shown)")
        for node in PatroniBed.databases {
            XCTAssertEqual(shown[node]?.patroniLeader, first, "\(node)'s Patroni names the DCS leader: \(shown)")
            XCTAssertEqual(shown[node]?.patroniState.map { ["running", "streaming"].contains($0) }, true, "\(shown)")
        }
        XCTAssertEqual(
            standbyRoles(shown),
            ["sync_standby", "replica"],
            "one synchronous standby and one replica: \(shown)"
        )
        // Nothing but meshd is reachable from another node: etcd, Patroni and PostgreSQL listen on
        // their node's loopback address only.
        for node in PatroniBed.databases {
            for port in [2379, 2380, 8008, 5432] {
                let verdict = self.echo(
                    in: patroni.bed,
                    from: PatroniBed.app,
                    host: patroni.bed.address(node),
                    port: port,
                    timeout: .seconds(2)
                )
                guard case .errored = verdict else {
                    return XCTFail("\(node)'s port \(port) must not be reachable from app1 at \(patroni.bed.address(node)): \(verdict)")
                }
            }
        }
        let writer = try FailoverWriter(bed: patroni, label: "node-death", seconds: 300)
        XCTAssertTrue(
            writer.waitForAcks(20, on: PatroniBed.address(first), timeout: .seconds(20)),
            "writes land on \(first)\n\(patroni.logs())"
        )

        // 1. Planned switchover to the synchronous standby (synchronous_mode allows no other
        // candidate): writes pause briefly and continue on it.
        let candidate = try XCTUnwrap(patroni.cluster(via: first).first { $0.role == "sync_standby" }?.name, "a sync standby")
        // Sessions held across it: one through rw (on the old primary) and four through ro (on
        // the standbys). Only the rw one may be cut.
        let sessions = try HeldSessions(
            bed: patroni,
            label: "switchover",
            listeners: [PatroniBed.rw] + Array(repeating: PatroniBed.ro, count: 4)
        )
        self.addCleanup { sessions.close() }
        let before = sessions.query()
        XCTAssertEqual(before.count, 5, "five sessions answer before the switchover: \(before)\n\(sessions.process.logTail())")
        XCTAssertEqual(before[0] ?? nil, PatroniBed.address(first), "the rw session is on the primary")
        let switched = Self.now
        let result = try patroni.bed.run(
            in: first,
            [
                "\(PatroniBed.patroniBin)/patronictl", "-c", "\(patroni.root)/\(first)/patroni.yml", "switchover", "--leader", first,
                "--candidate", candidate, "--force",
            ],
            timeout: .seconds(60)
        )
        XCTAssertEqual(result.status, 0, "patronictl switchover: \(result.output)")
        XCTAssertTrue(
            writer.waitForAcks(20, on: PatroniBed.address(candidate), timeout: Self.failoverBound),
            "writes continue on \(candidate) after the switchover; backends \(patroni.backends())\n\(patroni.logs())"
        )
        let after = sessions.query()
        print("RESULT sessions across the switchover: before \(before), after \(after)")
        XCTAssertEqual(after.count, 5, "every session answers, with a result or an error: \(after)")
        XCTAssertNil(after[0] ?? nil, "the rw session on the old primary is cut: \(after)")
        for index in 1...4 {
            XCTAssertEqual(after[index] ?? nil, before[index] ?? nil, "ro session \(index) on a standby survives the switchover: \(after)")
        }
        sessions.close()
        let pause = FailoverWriter.longestPause(from: switched, to: Self.now, in: writer.outcomes())
        print("RESULT switchover \(first) -> \(candidate): writes refused for \(String(format: "%.2f s", pause)) at most")

        // 2. etcd loses a member (a standby's): no failover, writes go on without an error.
        let standby = PatroniBed.databases.first { $0 != first && $0 != candidate }!
        patroni.etcd[standby]!.kill9()
        let etcdLost = Self.now
        XCTAssertTrue(writer.waitForAcks(150, timeout: .seconds(30)), "writes go on with one etcd member gone")
        let errorsSince = writer.outcomes().filter { $0.time > etcdLost && $0.node == nil }
        XCTAssertEqual(errorsSince.count, 0, "no write fails while one etcd member is gone: \(errorsSince.prefix(5))")
        XCTAssertEqual(patroni.leader(), candidate, "no failover when one etcd member goes")
        try patroni.restartEtcd(standby)
        try patroni.waitEtcdHealthy(timeout: .seconds(30))

        // 3. The primary's node dies: every process on it killed -9. `ro` is read throughout.
        try patroni.waitHealthy(timeout: .seconds(30))
        let killed = Self.now
        try patroni.killNode(candidate)
        var readFailures: [String] = []
        var reads = 0
        let resumed = writer.waitForWrite(after: killed, awayFrom: PatroniBed.address(candidate), timeout: Self.failoverBound) {
            do {
                _ = try patroni.sql("SELECT 1", listener: PatroniBed.ro)
            } catch {
                readFailures.append("\(error)")
            }
            reads += 1
        }
        XCTAssertNotNil(resumed, "writes resume through the same rw address after \(candidate)'s node died\n\(patroni.logs())")
        XCTAssertTrue(writer.waitForAcks(20, timeout: .seconds(20)), "and go on")
        let outcomes = writer.finish()
        let refused = FailoverWriter.refusal(after: killed, awayFrom: PatroniBed.address(candidate), in: outcomes)
        let newLeader = patroni.leader(excluding: [candidate])
        print(
            "RESULT primary node \(candidate) killed: writes refused for \(refused.map { String(format: "%.2f s", $0) } ?? "?"), "
                + "new leader \(newLeader ?? "?"), \(reads) reads on ro with \(readFailures.count) failures"
        )
        XCTAssertEqual(readFailures, [], "ro keeps serving from the surviving standby throughout (\(reads) reads)")

        // Every acknowledged commit is on the new primary (synchronous_mode), and the nodes that
        // took writes did so one after the other: first, candidate, then the new leader.
        let stored = Set(try patroni.sql("SELECT id FROM failover_bench").split(separator: "\n").compactMap { Int($0) })
        let lost = outcomes.filter { $0.node != nil && !stored.contains($0.id) }.map(\.id)
        print("RESULT \(lost.count) acknowledged commits lost of \(outcomes.filter { $0.node != nil }.count)")
        XCTAssertEqual(lost, [], "acknowledged commits missing on the new primary")
        // Two moves (the switchover, the death), so three runs of one writer each; writes split
        // between two nodes would alternate and make more.
        let writers = FailoverWriter.writers(in: outcomes)
        XCTAssertEqual(writers.count, 3, "writes moved \(first) -> \(candidate) -> the new leader and never alternated: \(writers)")
    }

    /// The primary cut off the network: Patroni demotes it, the others promote one of theirs, the
    /// balancer never writes to both; healed, the old primary rejoins as a standby by itself. Then
    /// the leader's meshd is killed -9, and later another leader's frozen, under Patroni: whatever
    /// Patroni decides, the balancer follows without splitting writes, and the node comes back.
    func testIsolatedPrimaryIsDemotedAndRejoinsAndMeshdDeathAndFreezeAreFollowed() throws {
        let patroni = try self.makePatroniBed()
        let first = try XCTUnwrap(patroni.leader(), "a leader after start")
        let writer = try FailoverWriter(bed: patroni, label: "partition", seconds: 400)
        XCTAssertTrue(writer.waitForAcks(20, on: PatroniBed.address(first), timeout: .seconds(20)), "writes land on \(first)")

        // 1. The primary's node loses the network; its processes run on and see no error.
        let cut = Self.now
        try patroni.bed.cutOff(first)
        let next = writer.waitForWrite(after: cut, awayFrom: PatroniBed.address(first), timeout: Self.failoverBound)
        XCTAssertNotNil(next, "writes resume on another node while \(first) is cut off\n\(patroni.logs())")
        let refused = FailoverWriter.refusal(after: cut, awayFrom: PatroniBed.address(first), in: writer.outcomes())
        print("RESULT primary \(first) cut off: writes refused for \(refused.map { String(format: "%.2f s", $0) } ?? "?")")
        XCTAssertTrue(
            patroni.waitForRecovery(on: first, timeout: .seconds(60)),
            "Patroni demotes the isolated \(first): its PostgreSQL runs as a standby\n\(patroni.patroni[first]!.logTail())"
        )

        // 2. Healed: the old primary follows the new one, with no operator action.
        try patroni.bed.heal(first)
        let rejoined = patroni.waitForMember(
            first,
            roles: ["replica", "sync_standby"],
            states: ["streaming", "running"],
            timeout: .seconds(120)
        )
        XCTAssertNotNil(rejoined, "\(first) rejoins as a standby after healing\n\(patroni.patroni[first]!.logTail(60))")
        if patroni.patroni[first]!.log().contains("pg_rewind") { print("RESULT \(first) rejoined with pg_rewind") }

        // 3. The current leader's meshd dies under Patroni: its etcd and Patroni lose every peer.
        try patroni.waitHealthy(timeout: .seconds(60))
        let leader = try XCTUnwrap(patroni.leader())
        let beforeMeshd = Self.now
        patroni.meshd[leader]!.kill9()
        let moved = writer.waitForWrite(after: beforeMeshd, awayFrom: PatroniBed.address(leader), timeout: Self.failoverBound)
        XCTAssertNotNil(moved, "writes move off \(leader) once its meshd is gone and Patroni promotes another\n\(patroni.logs())")
        try patroni.restartMeshd(leader)
        XCTAssertNotNil(
            patroni.waitForMember(leader, roles: ["replica", "sync_standby"], states: ["streaming", "running"], timeout: .seconds(120)),
            "\(leader) rejoins as a standby once its meshd is back\n\(patroni.patroni[leader]!.logTail(60))"
        )
        XCTAssertTrue(writer.waitForAcks(20, timeout: .seconds(20)), "writes go on")

        // 4. The new leader's meshd frozen (SIGSTOP, the hang a watchdog exists for): its tunnels
        // go silent, Patroni there loses etcd and demotes, another node takes over; thawed, the
        // old meshd redials and the node comes back as a standby.
        try patroni.waitHealthy(timeout: .seconds(60))
        let frozenLeader = try XCTUnwrap(patroni.leader())
        let frozen = Self.now
        patroni.meshd[frozenLeader]!.freeze()
        let away = writer.waitForWrite(after: frozen, awayFrom: PatroniBed.address(frozenLeader), timeout: Self.failoverBound)
        patroni.meshd[frozenLeader]!.thaw()
        XCTAssertNotNil(away, "writes move off \(frozenLeader) while its meshd is frozen\n\(patroni.logs())")
        XCTAssertNotNil(
            patroni.waitForMember(
                frozenLeader,
                roles: ["replica", "sync_standby"],
                states: ["streaming", "running"],
                timeout: .seconds(120)
            ),
            "\(frozenLeader) rejoins as a standby once its meshd is thawed\n\(patroni.patroni[frozenLeader]!.logTail(60))"
        )
        XCTAssertTrue(writer.waitForAcks(20, timeout: .seconds(20)), "writes go on")

        let outcomes = writer.finish()
        let writers = FailoverWriter.writers(in: outcomes)
        print("RESULT nodes that took writes, in order: \(writers)")
        XCTAssertEqual(writers.count, 4, "writes moved three times (cut, meshd death, meshd frozen) and never alternated: \(writers)")
        let stored = Set(try patroni.sql("SELECT id FROM failover_bench").split(separator: "\n").compactMap { Int($0) })
        let lost = outcomes.filter { $0.node != nil && !stored.contains($0.id) }.map(\.id)
        XCTAssertEqual(lost, [], "acknowledged commits missing on the current primary")
    }
}
