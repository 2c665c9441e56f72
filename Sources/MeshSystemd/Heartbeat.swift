import NIOConcurrencyHelpers

/// Proof of life from a periodic job (such as the tunnel supervisor's tick): the job calls
/// `beat()` each round and the `Watchdog` withholds its ping when the last beat is too old.
public final class Heartbeat: Sendable {
    /// Names the job in the watchdog's log lines.
    public let name: String
    private let last = NIOLockedValueBox<ContinuousClock.Instant?>(nil)

    public init(name: String) {
        self.name = name
    }

    /// The job completed a round.
    public func beat() {
        let now = ContinuousClock.now
        self.last.withLockedValue { $0 = now }
    }

    /// The time of the last beat; nil before the first.
    public var lastBeat: ContinuousClock.Instant? {
        self.last.withLockedValue { $0 }
    }
}
