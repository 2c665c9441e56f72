import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// A plain blocking/non-blocking TCP socket for what NIO would hide: sending arbitrary bytes to a
/// mesh port, counting exactly how many bytes the kernel accepted, and picking free ports.
final class RawSocket {
    struct Failure: Error, CustomStringConvertible {
        var description: String
    }

    let fd: Int32

    private init(fd: Int32) { self.fd = fd }

    deinit { self.close() }

    private var closed = false

    func close() {
        guard !self.closed else { return }
        self.closed = true
        _ = Glibc.close(self.fd)
    }

    private static func address(host: String, port: Int) throws -> sockaddr_in {
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_port = in_port_t(UInt16(port).bigEndian)
        guard inet_pton(AF_INET, host, &addr.sin_addr) == 1 else { throw Failure(description: "bad IPv4 address \(host)") }
        return addr
    }

    /// Connects (blocking, bounded by `timeout` through SO_SNDTIMEO).
    static func connect(host: String, port: Int, timeout: Duration = .seconds(5)) throws -> RawSocket {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw Failure(description: "socket(): errno \(errno)") }
        let sock = RawSocket(fd: fd)
        var tv = timeval(tv_sec: Int(timeout.components.seconds), tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        var addr = try Self.address(host: host, port: port)
        let rc = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                Glibc.connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }
        guard rc == 0 else { throw Failure(description: "connect to \(host):\(port): \(String(cString: strerror(errno)))") }
        return sock
    }

    /// A port that is free on `host` right now (bind to port 0, read it back, close).
    static func freePort(host: String) throws -> Int {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw Failure(description: "socket(): errno \(errno)") }
        defer { _ = Glibc.close(fd) }
        var addr = try Self.address(host: host, port: 0)
        let rc = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard rc == 0 else { throw Failure(description: "bind \(host):0: \(String(cString: strerror(errno)))") }
        var bound = sockaddr_in()
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &bound) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
        }
        return Int(UInt16(bigEndian: bound.sin_port))
    }

    /// Sends all of `bytes` (blocking).
    func send(_ bytes: [UInt8]) throws {
        var offset = 0
        while offset < bytes.count {
            let n = bytes[offset...].withUnsafeBytes { Glibc.send(self.fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            guard n > 0 else { throw Failure(description: "send: \(String(cString: strerror(errno)))") }
            offset += n
        }
    }

    func shutdownWrite() { _ = shutdown(self.fd, Int32(SHUT_WR)) }

    /// Reads until EOF, a reset, or the deadline.
    func readAll(timeout: Duration) -> (data: [UInt8], end: StreamEnd) {
        let deadline = ContinuousClock.now + timeout
        var data: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 65536)
        while true {
            let left = deadline - ContinuousClock.now
            guard left > .zero else { return (data, .timedOut) }
            var pfd = pollfd(fd: self.fd, events: Int16(POLLIN), revents: 0)
            let ms = Int32(min(left.components.seconds * 1000 + left.components.attoseconds / 1_000_000_000_000_000 + 1, 1000))
            let ready = poll(&pfd, 1, ms)
            if ready < 0, errno != EINTR { return (data, .error("poll: \(String(cString: strerror(errno)))")) }
            if ready <= 0 { continue }
            let n = chunk.withUnsafeMutableBytes { recv(self.fd, $0.baseAddress, $0.count, 0) }
            if n > 0 {
                data += chunk[0..<n]
            } else if n == 0 {
                return (data, .eof)
            } else if errno == ECONNRESET {
                return (data, .reset)
            } else if errno != EINTR && errno != EAGAIN {
                return (data, .error(String(cString: strerror(errno))))
            }
        }
    }

    /// Non-blocking writes of `next()` chunks until `deadline`, waiting for writability in between;
    /// returns how many bytes the kernel accepted. `next(offset)` gives the bytes starting at that
    /// stream offset (so a partially accepted chunk is continued exactly).
    func writeUntil(deadline: ContinuousClock.Instant, limit: Int, next: (Int) -> [UInt8]) throws -> Int {
        let flags = fcntl(self.fd, F_GETFL)
        _ = fcntl(self.fd, F_SETFL, flags | O_NONBLOCK)
        defer { _ = fcntl(self.fd, F_SETFL, flags) }
        var written = 0
        var pending: ArraySlice<UInt8> = []
        while written < limit, ContinuousClock.now < deadline {
            if pending.isEmpty { pending = ArraySlice(next(written).prefix(limit - written)) }
            let n = pending.withUnsafeBytes { Glibc.send(self.fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            if n > 0 {
                written += n
                pending = pending.dropFirst(n)
                continue
            }
            guard n < 0, errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR else {
                throw Failure(description: "send after \(written) bytes: \(String(cString: strerror(errno)))")
            }
            var pfd = pollfd(fd: self.fd, events: Int16(POLLOUT), revents: 0)
            _ = poll(&pfd, 1, 50)
        }
        return written
    }
}
