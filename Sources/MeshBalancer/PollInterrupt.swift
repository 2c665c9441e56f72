#if canImport(Glibc)
import Glibc
#endif

/// Wakes a thread blocked in `poll(2)` from any other thread: the waiter watches
/// `fileDescriptor`, and after `fire()` it stays readable, so every later wait ends at once too.
/// One per role probe run, whose cancellation must not wait for a silent server's deadline.
final class PollInterrupt: Sendable {
    /// The read end of a pipe, for the waiter's poll set.
    let fileDescriptor: Int32
    private let writeEnd: Int32

    /// Fails only when the process is out of file descriptors.
    init() throws(PipeError) {
        var ends: [Int32] = [0, 0]
        guard pipe(&ends) == 0 else { throw PipeError(errno: errno) }
        // Glibc's Swift module lacks pipe2; the flags follow at once. Non-blocking: a full pipe must
        // not block `fire()`.
        for end in ends { _ = fcntl(end, F_SETFD, FD_CLOEXEC) }
        _ = fcntl(ends[1], F_SETFL, O_NONBLOCK)
        self.fileDescriptor = ends[0]
        self.writeEnd = ends[1]
    }

    deinit {
        close(self.fileDescriptor)
        close(self.writeEnd)
    }

    func fire() {
        var byte: UInt8 = 1
        // A full pipe (fired many times) is already readable; nothing else can fail here.
        _ = write(self.writeEnd, &byte, 1)
    }

    /// The pipe could not be made.
    struct PipeError: Error, CustomStringConvertible {
        var errno: Int32
        var description: String { "cannot create a pipe: \(String(cString: strerror(self.errno)))" }
    }
}
