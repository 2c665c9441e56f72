import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// Plain blocking TCP sockets for what the tests need to see exactly: a listening socket the test
/// itself holds and passes to meshd, a client that connects while nobody accepts, refusals, and
/// free ports.
public final class TCPSocket {
    public struct Failure: Error, CustomStringConvertible {
        public var description: String
        /// The errno of the failed call (0 when no call failed).
        public var code: Int32

        public init(description: String, code: Int32 = 0) {
            self.description = description
            self.code = code
        }
    }

    public let fd: Int32
    private var closed = false

    private init(fd: Int32) { self.fd = fd }

    deinit { self.close() }

    /// Someone else closed the descriptor: never close that number again (it may be reused).
    public func forget() { self.closed = true }

    public func close() {
        guard !self.closed else { return }
        self.closed = true
        _ = Glibc.close(self.fd)
    }

    private static func address(host: String, port: Int) throws -> sockaddr_in {
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_port = in_port_t(UInt16(port).bigEndian)
        guard inet_pton(AF_INET, host, &addr.sin_addr) == 1 else {
            throw Failure(description: "bad IPv4 address \(host)", code: EINVAL)
        }
        return addr
    }

    private static func newSocket() throws -> Int32 {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw Failure(description: "socket(): \(String(cString: strerror(errno)))", code: errno) }
        return fd
    }

    private func bind(host: String, port: Int) throws {
        var one: Int32 = 1
        setsockopt(self.fd, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
        var addr = try Self.address(host: host, port: port)
        let rc = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.bind(self.fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard rc == 0 else { throw Failure(description: "bind \(host):\(port): \(String(cString: strerror(errno)))", code: errno) }
    }

    /// A listening socket on host:port, as systemd would bind one for a `.socket` unit.
    public static func listen(host: String, port: Int, backlog: Int32 = 128) throws -> TCPSocket {
        let socket = TCPSocket(fd: try self.newSocket())
        try socket.bind(host: host, port: port)
        guard Glibc.listen(socket.fd, backlog) == 0 else {
            throw Failure(description: "listen \(host):\(port): \(String(cString: strerror(errno)))", code: errno)
        }
        return socket
    }

    /// Connects (blocking, bounded by `timeout`).
    public static func connect(host: String, port: Int, timeout: Duration = .seconds(5)) throws -> TCPSocket {
        let socket = TCPSocket(fd: try self.newSocket())
        var tv = timeval(tv_sec: Int(timeout.components.seconds), tv_usec: 0)
        setsockopt(socket.fd, SOL_SOCKET, SO_SNDTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        var addr = try Self.address(host: host, port: port)
        let rc = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                Glibc.connect(socket.fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }
        guard rc == 0 else {
            throw Failure(description: "connect to \(host):\(port): \(String(cString: strerror(errno)))", code: errno)
        }
        return socket
    }

    /// True when a connection to host:port is refused (nothing listens there).
    public static func isRefused(host: String, port: Int) -> Bool {
        do {
            _ = try self.connect(host: host, port: port, timeout: .seconds(2))
            return false
        } catch let failure as Failure {
            return failure.code == ECONNREFUSED
        } catch {
            return false
        }
    }

    /// A port that is free on `host` right now (bind to port 0, read it back, close).
    public static func freePort(host: String) throws -> Int {
        let socket = TCPSocket(fd: try self.newSocket())
        try socket.bind(host: host, port: 0)
        var bound = sockaddr_in()
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &bound) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(socket.fd, $0, &length) }
        }
        return Int(UInt16(bigEndian: bound.sin_port))
    }

    /// Sends all of `bytes` (blocking).
    public func send(_ bytes: [UInt8]) throws {
        var offset = 0
        while offset < bytes.count {
            let n = bytes[offset...].withUnsafeBytes { Glibc.send(self.fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            guard n > 0 else { throw Failure(description: "send: \(String(cString: strerror(errno)))", code: errno) }
            offset += n
        }
    }

    public func shutdownWrite() { _ = shutdown(self.fd, Int32(SHUT_WR)) }

    /// Reads until EOF, a reset, or the deadline.
    public func readAll(timeout: Duration) -> (data: [UInt8], end: StreamEnd) {
        let deadline = ContinuousClock.now + timeout
        var data: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 65536)
        while true {
            let left = deadline - ContinuousClock.now
            guard left > .zero else { return (data, .timedOut) }
            var pfd = pollfd(fd: self.fd, events: Int16(POLLIN), revents: 0)
            let ready = poll(&pfd, 1, Int32(min(left.components.seconds * 1000 + 1, 200)))
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

    /// One echo round trip: send `payload`, half-close, read everything back.
    public static func echo(host: String, port: Int, payload: [UInt8], timeout: Duration = .seconds(10)) -> (data: [UInt8], end: StreamEnd)
    {
        do {
            let socket = try self.connect(host: host, port: port)
            try socket.send(payload)
            socket.shutdownWrite()
            return socket.readAll(timeout: timeout)
        } catch {
            return ([], .error("\(error)"))
        }
    }

    /// Non-blocking writes of `next()` chunks until `deadline`, waiting for writability in between;
    /// returns how many bytes the kernel accepted. `next(offset)` gives the bytes starting at that
    /// stream offset (so a partially accepted chunk is continued exactly).
    public func writeUntil(deadline: ContinuousClock.Instant, limit: Int, next: (Int) -> [UInt8]) throws -> Int {
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
