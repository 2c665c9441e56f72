import Foundation
import MeshTestSupport

/// Short `pgbench -C` runs back to back on a thread of their own until stopped, counting every
/// connection attempt and every one that failed. pgbench gives up on a client whose connection
/// (or its one transaction) fails ("client N aborted"), so each run is short and the tally comes
/// from its output: the transactions processed, the aborted clients, and the one connection
/// pgbench makes first to read the scale (a failure there ends the run with nothing processed).
final class ConnectionChurn: @unchecked Sendable {
    struct Tally: CustomStringConvertible {
        var runs = 0
        var attempts = 0
        var failures = 0
        /// Time spent in pgbench runs.
        var busy: Duration = .zero
        /// The first few error lines, for the report.
        var errors: [String] = []

        var perSecond: Double {
            let seconds = Double(self.busy.components.seconds) + Double(self.busy.components.attoseconds) / 1e18
            return seconds > 0 ? Double(self.attempts) / seconds : 0
        }
        var errorRate: Double { self.attempts == 0 ? 1 : Double(self.failures) / Double(self.attempts) }
        var description: String {
            "\(self.attempts) attempts in \(self.runs) runs (" + String(format: "%.0f/s", self.perSecond) + "), \(self.failures) failed ("
                + String(format: "%.3f%%", self.errorRate * 100) + ")"
        }
    }

    private let lock = NSLock()
    private var tally = Tally()
    private var stopping = false
    private let finished = DispatchSemaphore(value: 0)

    /// Starts at once: `pgbench ARGUMENTS` (which should include -C and -t) over and over.
    init(pgbench: String, arguments: [String]) {
        let thread = Thread { [self] in
            while !self.lock.withLock({ self.stopping }) {
                let started = ContinuousClock.now
                let result = try? Command.run(pgbench, arguments, timeout: .seconds(30))
                let took = ContinuousClock.now - started
                self.lock.withLock {
                    Self.count(result, into: &self.tally)
                    self.tally.busy += took
                }
            }
            self.finished.signal()
        }
        thread.start()
    }

    /// The tally so far.
    var current: Tally { self.lock.withLock { self.tally } }

    /// Lets the running pgbench finish (bounded by its timeout) and returns the final tally.
    func stop() -> Tally {
        self.lock.withLock { self.stopping = true }
        if self.finished.wait(timeout: .now() + 40) == .success { self.finished.signal() }  // a second stop returns at once
        return self.current
    }

    /// One run's share: processed transactions (one connection each), aborted clients, and the
    /// initial connection.
    static func count(_ result: CommandResult?, into tally: inout Tally) {
        tally.runs += 1
        guard let result else {
            tally.attempts += 1
            tally.failures += 1
            tally.errors.append("pgbench could not be started")
            return
        }
        let processed = Self.processed(in: result.stdout)
        let aborted = result.stderr.split(separator: "\n").filter {
            $0.range(of: #"client [0-9]+ aborted"#, options: .regularExpression) != nil
        }
        tally.attempts += 1 + (processed ?? 0) + aborted.count
        tally.failures += aborted.count
        if processed == nil {
            tally.failures += 1  // nothing ran: the first connection (or pgbench itself) failed
        }
        if (processed == nil || !aborted.isEmpty) && tally.errors.count < 10 {
            let lines = result.stderr.split(separator: "\n").prefix(3).joined(separator: " | ")
            tally.errors.append("exit \(result.status)\(result.timedOut ? " (timed out)" : ""): \(lines)")
        }
    }

    /// N from "number of transactions actually processed: N/M", or nil when the line is missing.
    static func processed(in stdout: String) -> Int? {
        guard let line = stdout.split(separator: "\n").first(where: { $0.hasPrefix("number of transactions actually processed:") }),
            let numbers = line.split(separator: ":").last?.split(separator: "/").first
        else { return nil }
        return Int(numbers.trimmingCharacters(in: .whitespaces))
    }
}
