import NIOCore
import NIOPosix

/// An in-process TCP echo server (on 127.0.0.1:0 unless given a bound socket) that honours half-close: it echoes everything, and
/// when its input ends it finishes writing what it owes and then closes (FIN), so a client sees a
/// complete echo followed by EOF.
public final class EchoServer {
    public let channel: Channel
    public var host: String { self.channel.localAddress!.ipAddress! }
    public var port: Int { self.channel.localAddress!.port! }
    public var endpoint: String { "\(self.host):\(self.port)" }

    public init(group: EventLoopGroup) throws {
        self.channel = try Self.bootstrap(group)
            .serverChannelOption(.backlog, value: 2048)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .bind(host: "127.0.0.1", port: 0).wait()
    }

    /// Serves on a socket already bound and listening (made, say, inside another
    /// network namespace); the server owns it from now on.
    public init(group: EventLoopGroup, boundSocket: NIOBSDSocket.Handle) throws {
        self.channel = try Self.bootstrap(group).withBoundSocket(boundSocket).wait()
    }

    private static func bootstrap(_ group: EventLoopGroup) -> ServerBootstrap {
        ServerBootstrap(group: group)
            .childChannelOption(.allowRemoteHalfClosure, value: true)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(EchoHandler())
                }
            }
    }

    public func close() {
        try? self.channel.close().wait()
    }
}

/// Echoes each read; on input EOF, closes once the last echo has been written.
private final class EchoHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private var lastWrite: EventLoopFuture<Void>?

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        self.lastWrite = context.write(data)
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        context.flush()
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        guard case ChannelEvent.inputClosed = event else {
            context.fireUserInboundEventTriggered(event)
            return
        }
        context.flush()
        let channel = context.channel
        // Writes complete in order, so once the last one is done everything owed has been sent.
        if let lastWrite = self.lastWrite {
            lastWrite.whenComplete { _ in channel.close(promise: nil) }
        } else {
            channel.close(promise: nil)
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        context.close(promise: nil)
    }
}
