import Logging
import NIOConcurrencyHelpers
import NIOCore

/// Warnings anyone who can reach the mesh port can make meshd repeat at will (one per rejected
/// connection). A token bucket lets a burst of `burst` through in full (a few probes or a
/// misconfigured peer are all logged) and then one a second; the rest are only counted, by kind,
/// and summed up in one line a second later. A flood of thousands of connections costs about two
/// lines a second, not one per connection, and the summary still says how many and why.
final class RateLimitedWarnings: Sendable {
    private struct State {
        var tokens: Double
        var lastRefill: NIODeadline = .now()
        var suppressed: [String: Int] = [:]
        var suppressedSince: NIODeadline? = nil
    }

    private let logger: Logger
    private let loop: EventLoop
    private let burst: Int
    private let level: Logger.Level
    /// What the summary line counts, e.g. "rejected connections".
    private let subject: String
    private let state: NIOLockedValueBox<State>

    /// - level: of every line, the summaries included (`.warning` unless the lines are routine,
    ///   as a forward's refused clients while its peer is down).
    init(logger: Logger, loop: EventLoop, subject: String, burst: Int = 20, level: Logger.Level = .warning) {
        self.logger = logger
        self.loop = loop
        self.subject = subject
        self.burst = burst
        self.level = level
        self.state = NIOLockedValueBox(State(tokens: Double(burst)))
    }

    /// Logs `message` if a token is left; otherwise counts it under `kind`.
    func warn(kind: String, _ message: @autoclosure () -> String, metadata: Logger.Metadata = [:]) {
        let now = NIODeadline.now()
        let (log, scheduleSummary) = self.state.withLockedValue { state -> (Bool, Bool) in
            let elapsed = Double((now - state.lastRefill).nanoseconds) / 1e9
            state.tokens = Swift.min(Double(self.burst), state.tokens + elapsed)
            state.lastRefill = now
            if state.tokens >= 1 {
                state.tokens -= 1
                return (true, false)
            }
            state.suppressed[kind, default: 0] += 1
            guard state.suppressedSince == nil else { return (false, false) }
            state.suppressedSince = now
            return (false, true)
        }
        if log { self.logger.log(level: self.level, "\(message())", metadata: metadata) }
        if scheduleSummary {
            self.loop.scheduleTask(in: .seconds(1)) { self.summarize() }
        }
    }

    private func summarize() {
        let now = NIODeadline.now()
        let (counts, since) = self.state.withLockedValue { state -> ([String: Int], NIODeadline?) in
            defer {
                state.suppressed = [:]
                state.suppressedSince = nil
            }
            return (state.suppressed, state.suppressedSince)
        }
        guard !counts.isEmpty, let since else { return }
        let total = counts.values.reduce(0, +)
        let byKind = counts.sorted { $0.value != $1.value ? $0.value > $1.value : $0.key < $1.key }
            .map { "\($0.key) \($0.value)" }.joined(separator: ", ")
        let seconds = Double((now - since).nanoseconds / 10_000_000) / 100
        self.logger.log(
            level: self.level,
            "\(total) more \(self.subject) in the last \(seconds) s, not logged one by one (\(byKind))",
            metadata: ["suppressed": "\(total)"]
        )
    }
}
