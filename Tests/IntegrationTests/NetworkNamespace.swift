import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// Moves the calling thread into a named network namespace (`/var/run/netns/NAME`), so sockets it
/// creates live there: a socket stays in the namespace it was created in, whichever thread uses it
/// later. Only threads the tests own are ever moved, and they are never moved back: each one ends
/// with its work, so no other code runs in a namespace it did not expect.
enum NetworkNamespace {
    struct Failure: Error, CustomStringConvertible {
        var description: String
    }

    /// CLONE_NEWNET from <sched.h>; Swift's Glibc module does not export it (it is _GNU_SOURCE only).
    private static let cloneNewNet: Int32 = 0x4000_0000

    /// setns(2), looked up at run time for the same reason.
    private static let setns: (@convention(c) (Int32, Int32) -> Int32)? = {
        guard let symbol = dlsym(UnsafeMutableRawPointer(bitPattern: 0), "setns") else { return nil }
        return unsafeBitCast(symbol, to: (@convention(c) (Int32, Int32) -> Int32).self)
    }()

    static func path(_ name: String) -> String { "/var/run/netns/\(name)" }

    /// Moves the *calling* thread into namespace `name` for good. Call it only on a thread made for
    /// the purpose (see `run(in:_:)`).
    static func enter(_ name: String) throws {
        guard let setns = self.setns else { throw Failure(description: "setns(2) is not available in this libc") }
        let fd = open(self.path(name), O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else {
            throw Failure(description: "open \(self.path(name)): \(String(cString: strerror(errno)))")
        }
        defer { close(fd) }
        guard setns(fd, self.cloneNewNet) == 0 else {
            throw Failure(description: "setns into \(self.path(name)): \(String(cString: strerror(errno)))")
        }
    }

    /// Runs `body` on a fresh thread inside namespace `name` and returns its result; the thread ends
    /// right after.
    static func run<T>(in name: String, _ body: @escaping @Sendable () throws -> T) throws -> T {
        let box = ResultBox<T>()
        let done = DispatchSemaphore(value: 0)
        let thread = Thread {
            box.result = Result {
                try self.enter(name)
                return try body()
            }
            done.signal()
        }
        thread.start()
        // The body is a socket call or two; a minute means something is badly wrong.
        guard done.wait(timeout: .now() + 60) == .success else {
            throw Failure(description: "a thread in network namespace \(name) did not finish within 60 s")
        }
        return try box.result!.get()
    }

    /// A new TCP socket (IPv4, CLOEXEC, blocking) created inside namespace `name`; the caller owns it.
    static func tcpSocket(in name: String) throws -> Int32 {
        try self.run(in: name) {
            let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
            guard fd >= 0 else { throw Failure(description: "socket() in \(name): \(String(cString: strerror(errno)))") }
            return fd
        }
    }

    /// A TCP socket listening on a loopback address (default 127.0.0.1, an ephemeral port) inside
    /// namespace `name`, for a server the test runs in-process on behalf of a node
    /// (`ServerBootstrap.withBoundSocket`).
    static func loopbackListener(
        in name: String,
        address: in_addr_t = 0x7F00_0001,
        port: UInt16 = 0,
        backlog: Int32 = 1024
    ) throws -> Int32 {
        let fd = try self.tcpSocket(in: name)
        var one: Int32 = 1
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_port = port.bigEndian
        addr.sin_addr.s_addr = address.bigEndian
        let bound = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard bound == 0, listen(fd, backlog) == 0 else {
            let text = String(cString: strerror(errno))
            close(fd)
            throw Failure(description: "listen on a loopback address (\(address)) in namespace \(name): \(text) (is lo up there?)")
        }
        return fd
    }
}

/// Carries a thread's result back to the thread waiting on the semaphore (which orders the accesses).
private final class ResultBox<T>: @unchecked Sendable {
    var result: Result<T, Error>?
}
