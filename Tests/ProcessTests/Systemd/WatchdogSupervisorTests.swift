import Foundation
import MeshTestSupport
import XCTest

/// The watchdog end to end, with `TestSupervisor` playing systemd (no systemd runs here): a meshd
/// whose event loop hangs, and then one frozen whole with SIGSTOP, stops pinging; the supervisor
/// notices within the period, aborts it as `WatchdogSignal=` would, restarts it, and the new meshd
/// is READY and carries traffic again.
final class WatchdogSupervisorTests: MeshTestCase {
    func testSupervisorRestartsAHungAndAFrozenMeshd() throws {
        let mesh = try self.makeMesh(range: 91, nodes: ["app1", "db1"])
        let forward = try self.addEchoForward(mesh)
        let config = try mesh.writeConfig()
        let db1 = try mesh.start("db1")
        let period = Duration.seconds(1)
        let supervisor = TestSupervisor(
            period: period,
            makeNotifySocket: { try self.makeNotifySocket() },
            launch: { incarnation, environment in
                // Only the first start hangs an event loop (the test-only flag, 3 s in); systemd would
                // run the same command each time, but the point here is what happens after the restart.
                let stall = incarnation == 1 ? ["--debug-stall-event-loop-after", "3"] : []
                let command =
                    TestSupervisor.exportOwnPid
                    + [BuildProducts.meshd.path, "--config", config.path, "--node", "app1", "--log-level", "debug"] + stall
                return try mesh.spawn(
                    label: "app1",
                    executable: command[0],
                    arguments: Array(command.dropFirst()),
                    environment: environment
                )
            }
        )

        // Incarnation 1: READY, pinging at half the period, serving.
        let first = try supervisor.start()
        guard supervisor.waitReady(timeout: .seconds(20)) != nil else {
            return XCTFail("no READY=1 within 20 s\n\(first.notify.transcript)\n\(first.process.logTail())")
        }
        XCTAssertTrue(mesh.waitUp(first.process, peer: "db1"))
        XCTAssertNotNil(self.waitForEcho(host: forward.host, port: forward.port, timeout: .seconds(10)), mesh.allLogs())
        XCTAssertNotNil(
            first.notify.waitFor(timeout: .seconds(3)) { $0.has("WATCHDOG=1") },
            "meshd honours WATCHDOG_PID (its own pid) and pings\n\(first.notify.transcript)"
        )

        // Hang: one event loop blocks; the pings stop and the supervisor notices.
        guard case .watchdogTimeout(let lastPing, let noticed) = supervisor.watch(timeout: .seconds(15)) else {
            return XCTFail("the hung meshd kept pinging (or exited)\n\(first.notify.transcript)\n\(first.process.logTail())")
        }
        let stalled = try XCTUnwrap(
            first.notify.messages.first { $0.fields["STATUS"]?.contains("stalled") == true },
            "meshd said it stalled\n\(first.notify.transcript)"
        )
        let hungDetected = noticed - stalled.at
        XCTAssertGreaterThan(noticed - lastPing, period)
        XCTAssertLessThan(hungDetected, period + .seconds(1), "noticed within the period (plus slack)\n\(first.notify.transcript)")
        XCTAssertTrue(first.process.isRunning, "meshd itself did not exit: only the watchdog shows the hang")
        XCTAssertNotNil(
            first.process.waitForLog(containing: ["watchdog:", "withholding WATCHDOG=1"], timeout: .seconds(1)),
            first.process.logTail()
        )
        let hung = try self.abortAndRestart(supervisor, forward: forward, db1: db1)

        // Freeze: SIGSTOP the second incarnation whole.
        let second = try XCTUnwrap(supervisor.current)
        XCTAssertNotNil(
            second.notify.waitFor(timeout: .seconds(3)) { $0.has("WATCHDOG=1") },
            "the restarted meshd pings\n\(second.notify.transcript)"
        )
        let frozen = ContinuousClock.now
        second.process.signal(SIGSTOP)
        guard case .watchdogTimeout(_, let noticedFrozen) = supervisor.watch(timeout: .seconds(10)) else {
            return XCTFail("the frozen meshd kept pinging\n\(second.notify.transcript)")
        }
        let frozenDetected = noticedFrozen - frozen
        XCTAssertLessThan(frozenDetected, period + .milliseconds(500), second.notify.transcript)
        let freeze = try self.abortAndRestart(supervisor, forward: forward, db1: db1)
        let third = try XCTUnwrap(supervisor.current)
        XCTAssertNotNil(
            third.notify.waitFor(timeout: .seconds(3)) { $0.has("WATCHDOG=1") },
            "the third meshd pings\n\(third.notify.transcript)"
        )
        XCTAssertEqual(supervisor.incarnations.count, 3)

        print(
            "RESULT watchdog period_ms=\(Self.ms(period)) detected_after_ms=\(Self.ms(hungDetected)) "
                + "ready_again_after_ms=\(Self.ms(hung.readyAgain)) serving_again_after_ms=\(Self.ms(hung.servingAgain)) "
                + "frozen_detected_after_ms=\(Self.ms(frozenDetected)) frozen_ready_again_after_ms=\(Self.ms(freeze.readyAgain)) "
                + "frozen_serving_again_after_ms=\(Self.ms(freeze.servingAgain)) restart_delay_ms=\(Self.ms(supervisor.restartDelay)) "
                + "abort_to_exit_ms=\(Self.ms(hung.abortTook)),\(Self.ms(freeze.abortTook))"
        )
    }

    private static func ms(_ duration: Duration) -> Int {
        Int(duration.components.seconds * 1000 + duration.components.attoseconds / 1_000_000_000_000_000)
    }

    private struct Recovery {
        /// From the watchdog signal to the exit (the runtime's backtrace).
        var abortTook: Duration
        /// From the watchdog signal to the next incarnation's READY=1, and to a forward echo through it.
        var readyAgain: Duration
        var servingAgain: Duration
    }

    /// Aborts the current incarnation, restarts it, and checks the new one is READY, has its tunnel
    /// back and carries a forward echo.
    private func abortAndRestart(_ supervisor: TestSupervisor, forward: (host: String, port: Int), db1: SpawnedProcess) throws -> Recovery {
        let aborted = ContinuousClock.now
        let dying = try XCTUnwrap(supervisor.current)
        let abort = supervisor.abort()
        XCTAssertFalse(
            abort.killed,
            "the watchdog signal alone ended meshd (no SIGKILL after \(supervisor.abortGrace))\n\(dying.process.logTail())"
        )
        XCTAssertEqual(abort.exitCode, 128 + SIGABRT, "SIGABRT ended it, as WatchdogSignal=SIGABRT would")
        let next = try supervisor.restart()
        guard let ready = supervisor.waitReady(timeout: .seconds(20)) else {
            XCTFail("incarnation \(next.number): no READY=1 within 20 s\n\(next.notify.transcript)\n\(next.process.logTail())")
            return Recovery(abortTook: abort.took, readyAgain: .seconds(-1), servingAgain: .seconds(-1))
        }
        let serving = self.waitForEcho(host: forward.host, port: forward.port, timeout: .seconds(15))
        let servingAt = ContinuousClock.now
        XCTAssertNotNil(serving, "incarnation \(next.number) carries the forward\n\(next.process.logTail())\n\(db1.logTail())")
        XCTAssertNotNil(next.process.waitForLog(containing: ["peer db1 up"], timeout: .seconds(5)), next.process.logTail())
        return Recovery(abortTook: abort.took, readyAgain: ready - aborted, servingAgain: servingAt - aborted)
    }
}
