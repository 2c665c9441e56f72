import Foundation
import MeshTestSupport
import XCTest

/// Failures that leave every process running but silence the network between them, across real
/// network namespaces: a node cut off from the bridge (a partition) and a frozen meshd (SIGSTOP,
/// the silent hang autossh missed). Both can only be noticed through missed PINGs; both must heal
/// by themselves once the cause goes away, with nothing restarted.
///
/// Timings are measured and printed (`RESULT ...` lines), not judged: this machine is shared and
/// noisy. The bounds below only stop a test that would otherwise wait forever.
final class PartitionTests: NetnsTestCase {
    private static let bound: Duration = .seconds(15)

    /// n2 cut off (its bridge port down) from n1 and n3: both report it `down` (log and `meshctl
    /// peers`) while the n1-n3 tunnel stays up, and a client of the forward to it gets an error,
    /// not a hang or a silent EOF. Healed: every tunnel is back and the forwards echo again, with
    /// the same processes. The targets with the settings here (ping 1 s x 3, backoff_max
    /// 2 s): down within 4 s, back within 3 s.
    func testCutOffNodeIsReportedDownAndHealsWithoutRestart() throws {
        let bed = try self.makeBed(nodes: ["n1", "n2", "n3"])
        let mesh = try self.makeMesh(bed: bed)
        let echo = try self.makeEchoServer(in: bed, on: "n2")
        mesh.addService("echo", on: ["n2": echo.endpoint], allow: ["n1", "n3"])
        let viaN1 = try mesh.addForward(on: "n1", to: "echo@n2")
        let viaN3 = try mesh.addForward(on: "n3", to: "echo@n2")
        let n1 = try mesh.start("n1")
        let n2 = try mesh.start("n2")
        let n3 = try mesh.start("n3")
        guard mesh.waitUp(n1, peer: "n2"), mesh.waitUp(n1, peer: "n3"), mesh.waitUp(n3, peer: "n2") else { return }
        XCTAssertNotNil(
            self.waitForEcho(in: bed, from: "n1", host: viaN1.host, port: viaN1.port, timeout: .seconds(10)),
            "n1's forward to echo@n2 works before the cut\n\(mesh.allLogs())"
        )
        XCTAssertNotNil(
            self.waitForEcho(in: bed, from: "n3", host: viaN3.host, port: viaN3.port, timeout: .seconds(10)),
            "n3's forward to echo@n2 works before the cut"
        )
        let pids = [n1.pid, n2.pid, n3.pid]

        var marks = [n1.logMark(), n2.logMark(), n3.logMark()]
        let cut = ContinuousClock.now
        try bed.cutOff("n2")
        let down = self.waitForLogs(
            [
                (n1, marks[0], "peer n2 down"), (n3, marks[2], "peer n2 down"),
                (n2, marks[1], "peer n1 down"), (n2, marks[1], "peer n3 down"),
            ],
            from: cut,
            timeout: Self.bound
        )
        XCTAssertNotNil(down[0], "n1 did not report the cut-off n2 down within \(Self.bound)\n\(n1.logTail())")
        XCTAssertNotNil(down[1], "n3 did not report the cut-off n2 down within \(Self.bound)\n\(n3.logTail())")
        XCTAssertNotNil(down[2], "the cut-off n2 did not report n1 down within \(Self.bound)\n\(n2.logTail())")
        XCTAssertNotNil(down[3], "the cut-off n2 did not report n3 down within \(Self.bound)\n\(n2.logTail())")
        XCTAssertTrue(
            down[0].map { _ in n1.log(after: marks[0]).contains("PING") } ?? true,
            "n1 names the missed PINGs as the reason\n\(n1.logTail())"
        )

        // The control API agrees, the rest of the mesh is untouched, and clients are told.
        // After `down` the link redials, so the control API shows down, connecting or handshaking.
        let seenByN1 = self.peerStates(seenBy: "n1", in: mesh)
        XCTAssertEqual(seenByN1["n3"], "up", "meshctl peers on n1 during the cut: \(seenByN1)")
        XCTAssertNotEqual(seenByN1["n2"] ?? "up", "up", "meshctl peers on n1 during the cut: \(seenByN1)")
        XCTAssertNotEqual(self.peerStates(seenBy: "n3", in: mesh)["n2"] ?? "up", "up", "meshctl peers on n3 during the cut")
        XCTAssertFalse(n1.log(after: marks[0]).contains("peer n3 down"), "the n1-n3 tunnel must survive n2's cut\n\(n1.logTail())")
        let during = self.echo(in: bed, from: "n1", host: viaN1.host, port: viaN1.port, timeout: .seconds(10))
        guard case .errored = during else {
            return XCTFail("a client of a forward to the cut-off n2 must see an error, saw: \(during)\n\(n1.logTail())")
        }

        marks = [n1.logMark(), n2.logMark(), n3.logMark()]
        let healed = ContinuousClock.now
        try bed.heal("n2")
        let up = self.waitForLogs(
            [
                (n1, marks[0], "peer n2 up"), (n3, marks[2], "peer n2 up"),
                (n2, marks[1], "peer n1 up"), (n2, marks[1], "peer n3 up"),
            ],
            from: healed,
            timeout: Self.bound
        )
        XCTAssertFalse(
            up.contains { $0 == nil },
            "not every tunnel of n2 came back within \(Self.bound) of healing: \(up)\n\(mesh.allLogs())"
        )
        let echoBack = self.waitForEcho(in: bed, from: "n1", host: viaN1.host, port: viaN1.port, timeout: Self.bound)
        XCTAssertNotNil(echoBack, "n1's forward to n2 did not work again after healing\n\(mesh.allLogs())")
        XCTAssertNotNil(
            self.waitForEcho(in: bed, from: "n3", host: viaN3.host, port: viaN3.port, timeout: Self.bound),
            "n3's forward to n2 did not work again after healing"
        )
        XCTAssertEqual([n1.pid, n2.pid, n3.pid], pids)
        XCTAssertTrue(n1.isRunning && n2.isRunning && n3.isRunning, "nothing was restarted or died\n\(mesh.allLogs())")
        XCTAssertEqual(mesh.processes.count, 3, "no process was started again")

        print(
            "RESULT partition down_after_ms=\(Self.worst(down[0], down[1])) (n1 \(Self.ms(down[0])), n3 \(Self.ms(down[1])); "
                + "n2 saw n1 \(Self.ms(down[2])), n3 \(Self.ms(down[3]))) healed_after_ms=\(Self.worst(up[0], up[1], up[2], up[3])) "
                + "(n1->n2 \(Self.ms(up[0])), n3<-n2 \(Self.ms(up[1])), n2 saw n1 \(Self.ms(up[2])), n3 \(Self.ms(up[3]))) "
                + "echo_after_heal_ms=\(Self.ms(echoBack)) client_during_cut=\"\(during)\" "
                + "targets: down <= 4000 ms (ping 1 s x 3 + 1 s), back <= 3000 ms (backoff_max 2 s + 1 s)"
        )
    }

    /// n2's meshd frozen (SIGSTOP) in its namespace: its sockets stay open, the kernel still ACKs
    /// their bytes, nothing answers. n1 and n3 report it down through missed PINGs; thawed
    /// (SIGCONT), it is up with both again and its service works, same processes.
    func testFrozenPeerIsReportedDownAndRecoversWhenThawed() throws {
        let bed = try self.makeBed(nodes: ["n1", "n2", "n3"])
        let mesh = try self.makeMesh(bed: bed)
        let echo = try self.makeEchoServer(in: bed, on: "n2")
        mesh.addService("echo", on: ["n2": echo.endpoint], allow: ["n1", "n3"])
        let viaN1 = try mesh.addForward(on: "n1", to: "echo@n2")
        let n1 = try mesh.start("n1")
        let n2 = try mesh.start("n2")
        let n3 = try mesh.start("n3")
        self.addCleanup { n2.thaw() }
        guard mesh.waitUp(n1, peer: "n2"), mesh.waitUp(n3, peer: "n2"), mesh.waitUp(n1, peer: "n3") else { return }
        XCTAssertNotNil(
            self.waitForEcho(in: bed, from: "n1", host: viaN1.host, port: viaN1.port, timeout: .seconds(10)),
            "the forward works before the freeze\n\(mesh.allLogs())"
        )

        var marks = [n1.logMark(), n3.logMark()]
        let frozen = ContinuousClock.now
        n2.freeze()
        let down = self.waitForLogs([(n1, marks[0], "peer n2 down"), (n3, marks[1], "peer n2 down")], from: frozen, timeout: Self.bound)
        XCTAssertNotNil(down[0], "n1 did not report the frozen n2 down within \(Self.bound)\n\(n1.logTail())")
        XCTAssertNotNil(down[1], "n3 did not report the frozen n2 down within \(Self.bound)\n\(n3.logTail())")
        XCTAssertTrue(n1.log(after: marks[0]).contains("PING"), "the reason names the missed PINGs\n\(n1.logTail())")
        let seenByN1 = self.peerStates(seenBy: "n1", in: mesh)
        XCTAssertEqual(seenByN1["n3"], "up", "meshctl peers on n1 while n2 is frozen: \(seenByN1)")
        XCTAssertNotEqual(seenByN1["n2"] ?? "up", "up", "meshctl peers on n1 while n2 is frozen: \(seenByN1)")
        let during = self.echo(in: bed, from: "n1", host: viaN1.host, port: viaN1.port, timeout: .seconds(10))
        guard case .errored = during else {
            return XCTFail("a client of a forward to the frozen n2 must see an error, saw: \(during)\n\(n1.logTail())")
        }

        marks = [n1.logMark(), n3.logMark()]
        let thawed = ContinuousClock.now
        n2.thaw()
        let up = self.waitForLogs([(n1, marks[0], "peer n2 up"), (n3, marks[1], "peer n2 up")], from: thawed, timeout: Self.bound)
        XCTAssertFalse(
            up.contains { $0 == nil },
            "n2's tunnels did not come back within \(Self.bound) of SIGCONT: \(up)\n\(mesh.allLogs())"
        )
        let echoBack = self.waitForEcho(in: bed, from: "n1", host: viaN1.host, port: viaN1.port, timeout: Self.bound)
        XCTAssertNotNil(echoBack, "the forward did not work again after SIGCONT\n\(mesh.allLogs())")
        XCTAssertTrue(n1.isRunning && n2.isRunning && n3.isRunning, "nothing died\n\(mesh.allLogs())")
        XCTAssertEqual(mesh.processes.count, 3, "no process was started again")

        print(
            "RESULT frozen down_after_ms=\(Self.worst(down[0], down[1])) (n1 \(Self.ms(down[0])), n3 \(Self.ms(down[1]))) "
                + "recovered_after_ms=\(Self.worst(up[0], up[1])) (n1 \(Self.ms(up[0])), n3 \(Self.ms(up[1]))) "
                + "echo_after_thaw_ms=\(Self.ms(echoBack)) client_while_frozen=\"\(during)\""
        )
    }

    private static func ms(_ duration: Duration?) -> String {
        duration.map { "\($0.milliseconds)" } ?? "none"
    }

    /// The slowest of several measurements ("none" if any is missing).
    private static func worst(_ durations: Duration?...) -> String {
        guard durations.allSatisfy({ $0 != nil }) else { return "none" }
        return "\(durations.compactMap { $0 }.max()!.milliseconds)"
    }
}
