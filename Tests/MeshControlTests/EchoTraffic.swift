import Foundation
import NIOCore
import NIOPosix

/// An in-process TCP echo server on 127.0.0.1: the service behind a forward, so traffic through the
/// mesh can be sent and checked.
final class EchoServer {
    let channel: Channel
    var port: Int { self.channel.localAddress!.port! }

    init(group: EventLoopGroup) async throws {
        self.channel = try await ServerBootstrap(group: group)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(.allowRemoteHalfClosure, value: true)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture { try channel.pipeline.syncOperations.addHandler(EchoHandler()) }
            }
            .bind(host: "127.0.0.1", port: 0).get()
    }

    func close() async {
        try? await self.channel.close()
    }

    /// Echoes every read; closes once the client has finished sending and everything was written back.
    private final class EchoHandler: ChannelInboundHandler {
        typealias InboundIn = ByteBuffer
        private var lastWrite: EventLoopFuture<Void>?

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            self.lastWrite = context.write(data)
        }

        func channelReadComplete(context: ChannelHandlerContext) {
            context.flush()
        }

        func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
            guard case ChannelEvent.inputClosed = event else { return context.fireUserInboundEventTriggered(event) }
            context.flush()
            let channel = context.channel
            (self.lastWrite ?? context.eventLoop.makeSucceededVoidFuture()).whenComplete { _ in channel.close(promise: nil) }
        }
    }
}

/// A blocking TCP client with a deadline: sends bytes through a forward and reads the echo back.
enum EchoClient {
    struct Failure: Error, CustomStringConvertible {
        var description: String
    }

    /// Sends `count` patterned bytes to `host:port`, half-closes, and returns what came back before EOF.
    static func roundTrip(host: String, port: Int, count: Int, timeout: TimeInterval = 20) throws -> [UInt8] {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw Failure(description: "socket(): \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        inet_pton(AF_INET, host, &address.sin_addr)
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard connected == 0 else { throw Failure(description: "connect to \(host):\(port): \(String(cString: strerror(errno)))") }
        _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK)

        let outgoing = (0..<count).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ 7) }
        var sent = 0
        var received: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 64 * 1024)
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            var events = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            if sent < count { events.events |= Int16(POLLOUT) }
            _ = poll(&events, 1, 100)
            if sent < count, events.revents & Int16(POLLOUT) != 0 {
                let written = outgoing[sent...].withUnsafeBytes { write(fd, $0.baseAddress, min($0.count, 64 * 1024)) }
                if written > 0 { sent += written }
                if sent == count { shutdown(fd, Int32(SHUT_WR)) }
            }
            if events.revents & Int16(POLLIN | POLLHUP) != 0 {
                let got = read(fd, &buffer, buffer.count)
                if got == 0 { return received }
                if got < 0, errno != EAGAIN { throw Failure(description: "read from \(host):\(port): \(String(cString: strerror(errno)))") }
                if got > 0 { received += buffer[0..<got] }
            }
        }
        throw Failure(description: "echo through \(host):\(port) not done within \(timeout)s (sent \(sent) of \(count), received \(received.count))")
    }

    /// The bytes `roundTrip` sends, to compare the echo with.
    static func pattern(_ count: Int) -> [UInt8] {
        (0..<count).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ 7) }
    }
}
