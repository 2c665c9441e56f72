import CSystemd
import Logging

/// Sends `WATCHDOG=1` at half the period systemd asked for (`WatchdogSec=`), but only while the
/// agent can still do its work: every event loop ran a no-op within the period and every
/// heartbeat (the tunnel supervisor's tick) beat within it. A hung agent therefore goes quiet and
/// systemd restarts it, instead of a healthy-looking timer thread pinging on its behalf.
public struct Watchdog: Sendable {
    /// What the last round found; transitions are logged, so the log shows when and why pings stopped.
    enum Health: Equatable {
        case starting
        case healthy
        case withholding(reason: String)
    }

    public let period: Duration
    private let probe: LoopProbe
    private let heartbeats: [Heartbeat]
    private let notifier: Notifier
    private let logger: Logger

    public init(period: Duration, probe: LoopProbe, heartbeats: [Heartbeat], notifier: Notifier, logger: Logger) {
        self.period = period
        self.probe = probe
        self.heartbeats = heartbeats
        self.notifier = notifier
        self.logger = logger
    }

    /// Makes SIGABRT end the process. systemd's watchdog kills a hung agent with SIGABRT
    /// (`WatchdogSignal=`); the Swift runtime's crash handler catches it, prints every thread's
    /// backtrace (seconds), and returns, and since kill() sent it nothing raises it again: the hung
    /// agent lived on until systemd's SIGKILL after `TimeoutAbortSec=` (30 s with the unit's
    /// TimeoutStopSec). Afterwards SIGABRT still prints the backtrace, then ends meshd at once.
    /// Call once at startup; returns whether the handler was installed.
    @discardableResult
    public static func endProcessOnAbortSignal() -> Bool {
        tm_sigabrt_backtrace_then_die() == 0
    }

    /// The period systemd set (`WATCHDOG_USEC`, for this process), or nil when it wants no pings.
    public static func periodFromEnvironment() -> Duration? {
        var usec: UInt64 = 0
        guard sd_watchdog_enabled(0, &usec) > 0, usec > 0 else { return nil }
        return .microseconds(Int64(clamping: usec))
    }

    /// Pings every half period until the task is cancelled.
    public func run() async {
        var health = Health.starting
        // A floor, so an absurdly short WatchdogSec= cannot turn this into a busy loop.
        let interval = max(self.period / 2, .milliseconds(10))
        while !Task.isCancelled {
            let started = ContinuousClock.now
            let next = self.check(now: started, unanswered: await self.probe.unanswered(within: self.period))
            if Task.isCancelled { return }
            if next == .healthy { self.notifier.watchdog() }
            self.log(from: health, to: next)
            health = next
            let elapsed = ContinuousClock.now - started
            if elapsed < interval { try? await Task.sleep(for: interval - elapsed) }
        }
    }

    /// One round's verdict from the loop probe and the heartbeats.
    func check(now: ContinuousClock.Instant, unanswered: [Int]) -> Health {
        if !unanswered.isEmpty {
            let loops = unanswered.map { "#\($0)" }.joined(separator: ", ")
            return .withholding(reason: "event loop \(loops) of \(self.probe.loops.count) did not run a no-op task within \(self.period)")
        }
        for heartbeat in self.heartbeats {
            guard let last = heartbeat.lastBeat else {
                return .withholding(reason: "\(heartbeat.name) has not completed a tick yet")
            }
            if now - last > self.period {
                return .withholding(reason: "\(heartbeat.name) has not completed a tick within \(self.period)")
            }
        }
        return .healthy
    }

    private func log(from old: Health, to new: Health) {
        guard old != new else { return }
        switch new {
        case .healthy:
            self.logger.info("watchdog: healthy, sending WATCHDOG=1 every \(self.period / 2) (period \(self.period))")
        case .withholding(let reason):
            self.logger.error("watchdog: \(reason); withholding WATCHDOG=1 so systemd restarts meshd if it persists")
        case .starting:
            break
        }
    }
}
