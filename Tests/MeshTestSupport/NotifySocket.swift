import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// A fake service manager's `NOTIFY_SOCKET`: a Unix datagram socket the test owns, with a reader
/// thread that records every message meshd sends (`READY=1`, `STATUS=…`, `WATCHDOG=1`, …) and
/// when it arrived. (Sendable by hand: every mutable field is behind `lock`.)
public final class NotifySocket: @unchecked Sendable {
    public struct Message: CustomStringConvertible {
        public var at: ContinuousClock.Instant
        /// CLOCK_MONOTONIC (µs) when it arrived, to compare with `MONOTONIC_USEC=`.
        public var monotonicMicroseconds: UInt64
        public var fields: [String: String]
        public var text: String

        public var description: String { self.text.replacingOccurrences(of: "\n", with: " | ") }
        public func has(_ assignment: String) -> Bool {
            let parts = assignment.split(separator: "=", maxSplits: 1).map(String.init)
            return self.fields[parts[0]] == parts[1]
        }
    }

    public struct Failure: Error, CustomStringConvertible {
        public var description: String
    }

    public let path: String
    private let fd: Int32
    private let lock = NSLock()
    private var received: [Message] = []
    private var stopped = false
    private var reader: Thread?
    private let finished = DispatchSemaphore(value: 0)

    public init() throws {
        // sun_path holds 108 bytes: keep the path short.
        self.path = "/tmp/mesh-notify-\(UUID().uuidString.prefix(8)).sock"
        self.fd = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard self.fd >= 0 else { throw Failure(description: "socket(AF_UNIX): \(String(cString: strerror(errno)))") }
        var addr = sockaddr_un()
        addr.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &addr.sun_path) { bytes in
            for (index, byte) in self.path.utf8.enumerated() { bytes[index] = byte }
        }
        let rc = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(self.fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        guard rc == 0 else {
            Glibc.close(self.fd)
            throw Failure(description: "bind \(self.path): \(String(cString: strerror(errno)))")
        }
        let thread = Thread { [weak self] in self?.readLoop() }
        self.reader = thread
        thread.start()
    }

    deinit { self.close() }

    /// Stops the reader (bounded) and removes the socket file.
    public func close() {
        let wasRunning: Bool = self.lock.withLock {
            defer { self.stopped = true }
            return !self.stopped
        }
        guard wasRunning else { return }
        _ = self.finished.wait(timeout: .now() + 2)
        Glibc.close(self.fd)
        unlink(self.path)
    }

    private func readLoop() {
        var buffer = [UInt8](repeating: 0, count: 8192)
        while !self.lock.withLock({ self.stopped }) {
            var pfd = pollfd(fd: self.fd, events: Int16(POLLIN), revents: 0)
            guard poll(&pfd, 1, 50) > 0 else { continue }
            let n = buffer.withUnsafeMutableBytes { recv(self.fd, $0.baseAddress, $0.count, Int32(MSG_DONTWAIT)) }
            guard n > 0 else { continue }
            var now = timespec()
            clock_gettime(CLOCK_MONOTONIC, &now)
            let text = String(decoding: buffer[0..<n], as: UTF8.self)
            var fields: [String: String] = [:]
            for line in text.split(separator: "\n") {
                let parts = line.split(separator: "=", maxSplits: 1).map(String.init)
                if parts.count == 2 { fields[parts[0]] = parts[1] }
            }
            let message = Message(
                at: .now,
                monotonicMicroseconds: UInt64(now.tv_sec) * 1_000_000 + UInt64(now.tv_nsec) / 1000,
                fields: fields,
                text: text
            )
            self.lock.withLock { self.received.append(message) }
        }
        self.finished.signal()
    }

    /// Every message so far, in arrival order.
    public var messages: [Message] { self.lock.withLock { self.received } }

    /// Polls until a message at index ≥ `from` matches; returns its index, or nil at the deadline.
    public func waitFor(from: Int = 0, timeout: Duration, _ matches: (Message) -> Bool) -> Int? {
        let deadline = ContinuousClock.now + timeout
        while true {
            let all = self.messages
            if from < all.count, let index = all[from...].firstIndex(where: matches) { return index }
            if ContinuousClock.now >= deadline { return nil }
            Thread.sleep(forTimeInterval: 0.01)
        }
    }

    /// All messages, one a line, for failure messages.
    public var transcript: String {
        self.messages.enumerated().map { "#\($0.offset) \($0.element)" }.joined(separator: "\n")
    }
}

extension MeshTestCase {
    /// A notify socket closed at teardown.
    public func makeNotifySocket() throws -> NotifySocket {
        let socket = try NotifySocket()
        self.addCleanup { socket.close() }
        return socket
    }
}
