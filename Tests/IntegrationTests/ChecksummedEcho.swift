import Foundation
import MeshTestSupport

#if canImport(Glibc)
import Glibc
#endif

/// One client stream of the integrity tests: sends a random payload whose last 32 bytes are the
/// SHA-256 of the rest, half-closes, reads the echo back while still sending (poll, both ways, so
/// no payload size can deadlock), and says exactly how the stream ended. Blocking code on the
/// caller's thread, on a socket the caller made (so it may live in any network namespace).
enum ChecksummedEcho {
    /// How one stream ended, from the client's point of view.
    enum Verdict: Equatable, CustomStringConvertible {
        /// Every byte came back, the checksum trailer matches, then a clean EOF.
        case completed
        /// The client saw an error: refused, reset, a failed send; `echoed` bytes (all correct)
        /// had come back before it.
        case errored(String, echoed: Int)
        /// A clean EOF before the whole echo came back: a silent truncation.
        case truncated(echoed: Int, of: Int)
        /// A byte came back that was not the byte sent (or more bytes than were sent).
        case corrupted(at: Int)
        /// Nothing ended the stream within the client's deadline.
        case stalled(echoed: Int, of: Int)

        var description: String {
            switch self {
            case .completed: "completed"
            case .errored(let text, let echoed): "errored (\(text)) after \(echoed) echoed bytes"
            case .truncated(let echoed, let total): "TRUNCATED: clean EOF after \(echoed) of \(total) bytes"
            case .corrupted(let offset): "CORRUPTED at byte \(offset)"
            case .stalled(let echoed, let total): "stalled with \(echoed) of \(total) bytes echoed"
            }
        }
    }

    /// `size` bytes: random, then the SHA-256 of those random bytes (size must be at least 33).
    static func payload<G: RandomNumberGenerator>(size: Int, using generator: inout G) -> [UInt8] {
        precondition(size > 32)
        var bytes = [UInt8](repeating: 0, count: size)
        bytes.withUnsafeMutableBytes { raw in
            var offset = 0
            while offset < size - 32 {
                var word = generator.next()
                let count = min(8, size - 32 - offset)
                withUnsafeBytes(of: &word) { raw.baseAddress!.advanced(by: offset).copyMemory(from: $0.baseAddress!, byteCount: count) }
                offset += count
            }
            let digest = SHA256Digest()
            digest.update(UnsafeRawBufferPointer(rebasing: raw[0..<(size - 32)]))
            let sum = digest.finishBytes()
            raw.baseAddress!.advanced(by: size - 32).copyMemory(from: sum, byteCount: 32)
        }
        return bytes
    }

    /// True when the last 32 bytes are the SHA-256 of the rest.
    static func checksumHolds(_ bytes: [UInt8]) -> Bool {
        guard bytes.count > 32 else { return false }
        let digest = SHA256Digest()
        bytes.withUnsafeBytes { digest.update(UnsafeRawBufferPointer(rebasing: $0[0..<(bytes.count - 32)])) }
        return digest.finishBytes() == Array(bytes.suffix(32))
    }

    /// Connects `fd` (a fresh TCP socket, closed here whatever happens) to host:port and runs one
    /// exchange of `payload`, bounded by `timeout`.
    static func run(fd: Int32, host: String, port: Int, payload: [UInt8], timeout: Duration) -> Verdict {
        defer { close(fd) }
        let deadline = ContinuousClock.now + timeout
        if let error = self.connect(fd: fd, host: host, port: port, timeout: timeout) {
            return .errored("connect: \(error)", echoed: 0)
        }
        _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK)
        var sent = 0
        var shut = false
        var echoed = [UInt8]()
        echoed.reserveCapacity(payload.count)
        var chunk = [UInt8](repeating: 0, count: 65536)
        while true {
            let left = deadline - ContinuousClock.now
            guard left > .zero else { return .stalled(echoed: echoed.count, of: payload.count) }
            if sent == payload.count, !shut {
                shutdown(fd, Int32(SHUT_WR))
                shut = true
            }
            var pfd = pollfd(fd: fd, events: Int16(POLLIN) | (sent < payload.count ? Int16(POLLOUT) : 0), revents: 0)
            let ready = poll(&pfd, 1, 100)
            if ready < 0, errno != EINTR { return .errored("poll: \(String(cString: strerror(errno)))", echoed: echoed.count) }
            if ready <= 0 { continue }
            // Read first: an error must be seen by recv, before a send could consume it.
            if pfd.revents & Int16(POLLIN | POLLERR | POLLHUP) != 0 {
                while true {
                    let n = chunk.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
                    if n > 0 {
                        let start = echoed.count
                        if start + n > payload.count { return .corrupted(at: payload.count) }
                        for i in 0..<n where chunk[i] != payload[start + i] { return .corrupted(at: start + i) }
                        echoed += chunk[0..<n]
                        continue
                    }
                    if n == 0 {
                        guard echoed.count == payload.count else { return .truncated(echoed: echoed.count, of: payload.count) }
                        return self.checksumHolds(echoed) ? .completed : .corrupted(at: -1)
                    }
                    if errno == EAGAIN || errno == EWOULDBLOCK { break }
                    if errno == EINTR { continue }
                    return .errored("recv: \(String(cString: strerror(errno)))", echoed: echoed.count)
                }
            }
            if sent < payload.count, pfd.revents & Int16(POLLOUT) != 0 {
                let end = min(payload.count, sent + 65536)
                let n = payload[sent..<end].withUnsafeBytes { send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
                if n > 0 {
                    sent += n
                } else if n < 0, errno != EAGAIN, errno != EWOULDBLOCK, errno != EINTR {
                    // A failed send (ECONNRESET, or EPIPE once the reset was reported) is an error
                    // the client sees; the socket then reads as EOF, so stop here.
                    return .errored("send: \(String(cString: strerror(errno)))", echoed: echoed.count)
                }
            }
        }
    }

    /// A blocking connect bounded by `timeout`; nil on success, else the error text.
    private static func connect(fd: Int32, host: String, port: Int, timeout: Duration) -> String? {
        var tv = timeval(tv_sec: Int(max(1, timeout.components.seconds)), tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_port = in_port_t(UInt16(port).bigEndian)
        guard inet_pton(AF_INET, host, &addr.sin_addr) == 1 else { return "bad IPv4 address \(host)" }
        let rc = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        return rc == 0 ? nil : String(cString: strerror(errno))
    }
}
