import NIOConcurrencyHelpers

/// Sends `READY=1` once every named part of the agent (its listeners, its control socket) has
/// reported that it started, and not before: systemd starts units ordered after meshd only when
/// connecting to meshd will work.
public final class ReadinessGate: Sendable {
    private let waiting: NIOLockedValueBox<Set<String>?>
    private let onReady: @Sendable () -> Void

    /// `onReady` runs once, on the thread that reports the last part.
    public init(parts: Set<String>, onReady: @escaping @Sendable () -> Void) {
        self.waiting = NIOLockedValueBox(parts)
        self.onReady = onReady
    }

    /// `part` is up. Unknown or repeated parts are ignored.
    public func started(_ part: String) {
        let nowReady = self.waiting.withLockedValue { waiting -> Bool in
            guard var parts = waiting else { return false }
            parts.remove(part)
            guard parts.isEmpty else {
                waiting = parts
                return false
            }
            waiting = nil
            return true
        }
        if nowReady { self.onReady() }
    }

    /// True once `READY=1` has been sent.
    public var isReady: Bool {
        self.waiting.withLockedValue { $0 == nil }
    }
}
