import Foundation
import MeshTestSupport

/// A `Command.run` on a thread of its own, so a test can drive a long client (pgbench) while it
/// injects failures on the main thread, then collect the result. The command's own timeout bounds it.
final class BackgroundCommand: @unchecked Sendable {
    private let lock = NSLock()
    private var outcome: Result<CommandResult, Error>?
    private let done = DispatchSemaphore(value: 0)

    init(_ executable: String, _ arguments: [String], timeout: Duration) {
        let thread = Thread { [self] in
            let result = Result { try Command.run(executable, arguments, timeout: timeout) }
            self.lock.withLock { self.outcome = result }
            self.done.signal()
        }
        thread.start()
    }

    /// The result once the command has ended, or nil if it is still running after `timeout`.
    func wait(timeout: Duration) throws -> CommandResult? {
        let seconds = Double(timeout.components.seconds) + Double(timeout.components.attoseconds) / 1e18
        guard self.done.wait(timeout: .now() + seconds) == .success else { return nil }
        self.done.signal()  // later waits return at once
        return try self.lock.withLock { self.outcome }?.get()
    }
}
