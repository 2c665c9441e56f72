import Foundation
import MeshTestSupport

#if canImport(Glibc)
import Glibc
#endif

/// Plays systemd's part for one meshd unit with `Type=notify`, `WatchdogSec=`, `WatchdogSignal=SIGABRT`
/// (systemd's default, which units/meshd.service replaces by SIGKILL; README shows the drop-in that
/// brings SIGABRT's backtraces back, and this proves meshd dies of it) and `Restart=on-failure`: starts it with `NOTIFY_SOCKET`,
/// `WATCHDOG_USEC` and `WATCHDOG_PID` (the child's own pid, as systemd sets the main pid), waits for
/// `READY=1`, times the `WATCHDOG=1` pings, and when none came for longer than the period sends the
/// watchdog signal (plus SIGCONT, so a stopped process receives it), SIGKILL if it is still there
/// after `TimeoutAbortSec=` (the unit's TimeoutStopSec=30s: the Swift runtime's backtracer prints
/// where every thread was before the process dies, which takes seconds), and starts the next
/// incarnation after `RestartSec=`. Each incarnation gets a notify socket of its
/// own, so a message is never credited to the wrong process.
final class TestSupervisor {
    /// One start of the service.
    struct Incarnation {
        let number: Int
        let process: SpawnedProcess
        let notify: NotifySocket
        let started: ContinuousClock.Instant
    }

    /// How a watch ended.
    enum Verdict {
        /// No WATCHDOG=1 for longer than the period: `lastPing` (or READY=1 if none came) and when
        /// the supervisor noticed.
        case watchdogTimeout(lastPing: ContinuousClock.Instant, noticed: ContinuousClock.Instant)
        case exited(code: Int32?)
        /// Still pinging at the end of the watch.
        case healthy
    }

    struct Failure: Error, CustomStringConvertible {
        var description: String
    }

    let period: Duration
    let restartDelay: Duration
    let abortGrace: Duration
    private let makeNotifySocket: () throws -> NotifySocket
    /// Starts the service's process with the given environment; the incarnation number lets a test
    /// vary what it injects (systemd would start the same command every time).
    private let launch: (_ incarnation: Int, _ environment: [String: String]) throws -> SpawnedProcess
    private(set) var incarnations: [Incarnation] = []

    var current: Incarnation? { self.incarnations.last }

    init(
        period: Duration,
        restartDelay: Duration = .seconds(1),
        abortGrace: Duration = .seconds(30),
        makeNotifySocket: @escaping () throws -> NotifySocket,
        launch: @escaping (_ incarnation: Int, _ environment: [String: String]) throws -> SpawnedProcess
    ) {
        self.period = period
        self.restartDelay = restartDelay
        self.abortGrace = abortGrace
        self.makeNotifySocket = makeNotifySocket
        self.launch = launch
    }

    /// The `sh -c` prefix that exports `WATCHDOG_PID` as the shell's own pid and then execs the
    /// command in that same process: put it before the executable and its arguments.
    static let exportOwnPid = ["/bin/sh", "-c", "WATCHDOG_PID=$$; export WATCHDOG_PID; exec \"$@\"", "sh"]

    /// Starts the next incarnation.
    @discardableResult
    func start() throws -> Incarnation {
        let notify = try self.makeNotifySocket()
        let usec = self.period.components.seconds * 1_000_000 + self.period.components.attoseconds / 1_000_000_000_000
        let number = self.incarnations.count + 1
        let process = try self.launch(number, ["NOTIFY_SOCKET": notify.path, "WATCHDOG_USEC": "\(usec)"])
        let incarnation = Incarnation(number: number, process: process, notify: notify, started: .now)
        self.incarnations.append(incarnation)
        return incarnation
    }

    /// When the current incarnation sent READY=1, or nil if it did not within `timeout` (or exited).
    func waitReady(timeout: Duration) -> ContinuousClock.Instant? {
        guard let current = self.current else { return nil }
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            if let ready = current.notify.messages.first(where: { $0.has("READY=1") }) { return ready.at }
            if !current.process.isRunning { return nil }
            Thread.sleep(forTimeInterval: 0.01)
        }
        return nil
    }

    /// The current incarnation's WATCHDOG=1 pings so far.
    func pings() -> [NotifySocket.Message] {
        self.current?.notify.messages.filter { $0.has("WATCHDOG=1") } ?? []
    }

    /// Watches the current incarnation the way systemd's watchdog timer does, polling every 10 ms
    /// for at most `timeout`: returns as soon as the time since its last ping (or since READY=1,
    /// before the first) exceeds the period, or the process exits.
    func watch(timeout: Duration) -> Verdict {
        guard let current = self.current else { return .exited(code: nil) }
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            if !current.process.isRunning { return .exited(code: current.process.exitCode) }
            let messages = current.notify.messages
            let last = messages.last(where: { $0.has("WATCHDOG=1") }) ?? messages.first(where: { $0.has("READY=1") })
            let now = ContinuousClock.now
            if let last, now - last.at > self.period { return .watchdogTimeout(lastPing: last.at, noticed: now) }
            Thread.sleep(forTimeInterval: 0.01)
        }
        return .healthy
    }

    /// How an abort ended.
    struct Abort {
        /// SIGKILL was needed after `abortGrace`.
        var killed: Bool
        /// 128 + signal.
        var exitCode: Int32?
        /// From the watchdog signal to the exit.
        var took: Duration
    }

    /// What systemd does on a watchdog timeout: SIGABRT and SIGCONT, SIGKILL if the process has
    /// not exited after `abortGrace`.
    func abort() -> Abort {
        guard let process = self.current?.process else { return Abort(killed: false, exitCode: nil, took: .zero) }
        let start = ContinuousClock.now
        process.signal(SIGABRT)
        process.signal(SIGCONT)
        if let code = process.waitForExit(timeout: self.abortGrace) { return Abort(killed: false, exitCode: code, took: .now - start) }
        process.kill9()
        return Abort(killed: true, exitCode: process.exitCode, took: .now - start)
    }

    /// Restart=on-failure: waits the restart delay and starts the next incarnation.
    @discardableResult
    func restart() throws -> Incarnation {
        guard self.current?.process.isRunning != true else {
            throw Failure(description: "incarnation \(self.incarnations.count) is still running; abort it first")
        }
        Thread.sleep(
            forTimeInterval: Double(self.restartDelay.components.seconds) + Double(self.restartDelay.components.attoseconds) / 1e18
        )
        return try self.start()
    }
}
