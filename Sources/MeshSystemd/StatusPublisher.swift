import NIOConcurrencyHelpers

/// Keeps systemd's `STATUS=` line current: composes the text from `compose` and sends it when it
/// changed, so `systemctl status meshd` shows the agent's state in words without flooding the
/// notify socket.
public final class StatusPublisher: Sendable {
    private let notifier: Notifier
    private let compose: @Sendable () -> String
    private let lastSent = NIOLockedValueBox<String?>(nil)

    public init(notifier: Notifier, compose: @escaping @Sendable () -> String) {
        self.notifier = notifier
        self.compose = compose
    }

    /// The status text as of now.
    public var current: String { self.compose() }

    /// Sends the status if it differs from the last one sent.
    public func publish() {
        let text = self.compose()
        let changed = self.lastSent.withLockedValue { last in
            defer { last = text }
            return last != text
        }
        if changed { self.notifier.status(text) }
    }

    /// Records `text` as sent by someone else (with READY=1, say), so it is not repeated.
    public func sent(_ text: String) {
        self.lastSent.withLockedValue { $0 = text }
    }

    /// Publishes every `interval` until the task is cancelled.
    public func run(every interval: Duration) async {
        while !Task.isCancelled {
            self.publish()
            try? await Task.sleep(for: interval)
        }
    }
}
