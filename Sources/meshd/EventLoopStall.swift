import Dispatch
import Logging
import MeshSystemd
import NIOCore

/// Test only (`--debug-stall-event-loop-after SECONDS`): after the delay, blocks one event loop
/// until shutdown begins, so a test can watch the watchdog stop pinging. Never armed otherwise.
final class EventLoopStall: Sendable {
    private let released = DispatchSemaphore(value: 0)
    private let delay: Duration
    private let loop: EventLoop
    private let notifier: Notifier
    private let logger: Logger

    init(after delay: Duration, loop: EventLoop, notifier: Notifier, logger: Logger) {
        self.delay = delay
        self.loop = loop
        self.notifier = notifier
        self.logger = logger
    }

    func arm() {
        let released = self.released
        let notifier = self.notifier
        let logger = self.logger
        self.logger.warning("--debug-stall-event-loop-after: one event loop will block in \(self.delay) (test only)")
        self.loop.scheduleTask(in: TimeAmount(self.delay)) {
            logger.warning("--debug-stall-event-loop-after: blocking this event loop until shutdown")
            notifier.status("debug: event loop stalled by --debug-stall-event-loop-after")
            released.wait()
        }
    }

    /// Lets the loop go, so shutdown can use it.
    func release() {
        self.released.signal()
    }
}
