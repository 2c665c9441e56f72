import MeshTestSupport
import NIOCore
import NIOPosix

/// An echo server that sends its echo back slowly (`bytesPerTick` every `tick`), so a stream is
/// still mid-answer when a test cuts it. Like `EchoServer`, it closes once input ended and all
/// owed bytes are written.
final class TrickleEchoServer {
    let channel: Channel
    var endpoint: String { "127.0.0.1:\(self.channel.localAddress!.port!)" }

    init(group: EventLoopGroup, bytesPerTick: Int = 1024, tick: TimeAmount = .milliseconds(50)) throws {
        self.channel = try ServerBootstrap(group: group)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(.allowRemoteHalfClosure, value: true)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(TrickleHandler(bytesPerTick: bytesPerTick, tick: tick))
                }
            }
            .bind(host: "127.0.0.1", port: 0).wait()
    }

    func close() {
        try? self.channel.close().wait()
    }
}

private final class TrickleHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private let bytesPerTick: Int
    private let tick: TimeAmount
    private var owed = ByteBuffer()
    private var inputEnded = false
    private var timer: Scheduled<Void>?

    init(bytesPerTick: Int, tick: TimeAmount) {
        self.bytesPerTick = bytesPerTick
        self.tick = tick
    }

    func channelActive(context: ChannelHandlerContext) {
        self.scheduleTick(context: context)
        context.fireChannelActive()
    }

    func channelInactive(context: ChannelHandlerContext) {
        self.timer?.cancel()
        self.timer = nil
        context.fireChannelInactive()
    }

    private func scheduleTick(context: ChannelHandlerContext) {
        self.timer = context.eventLoop.assumeIsolated().scheduleTask(in: self.tick) {
            self.sendSome(context: context)
        }
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var buffer = self.unwrapInboundIn(data)
        self.owed.writeBuffer(&buffer)
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if case ChannelEvent.inputClosed = event { self.inputEnded = true }
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        context.close(promise: nil)
    }

    private func sendSome(context: ChannelHandlerContext) {
        if let slice = self.owed.readSlice(length: min(self.bytesPerTick, self.owed.readableBytes)), slice.readableBytes > 0 {
            context.writeAndFlush(self.wrapOutboundOut(slice), promise: nil)
        }
        if self.inputEnded, self.owed.readableBytes == 0 {
            self.timer = nil
            let channel = context.channel
            context.writeAndFlush(self.wrapOutboundOut(ByteBuffer())).whenComplete { _ in channel.close(promise: nil) }
        } else if context.channel.isActive {
            self.scheduleTick(context: context)
        }
    }
}

extension MeshTestCase {
    /// A `TrickleEchoServer` closed at teardown.
    func makeTrickleEchoServer() throws -> TrickleEchoServer {
        let server = try TrickleEchoServer(group: self.group)
        self.addCleanup { server.close() }
        return server
    }
}
