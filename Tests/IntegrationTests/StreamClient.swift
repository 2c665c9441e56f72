import Foundation
import MeshTestSupport
import NIOCore
import NIOPosix

/// What one client connection sent and got back.
struct StreamOutcome: Sendable {
    var received: ByteBuffer
    var end: StreamEnd
}

/// A NIO TCP client: connects, sends a payload, optionally half-closes, reads everything back and
/// reports whether the read side ended by EOF or by a reset. Many can run at once on one group.
enum StreamClient {
    /// Starts one exchange; the future always succeeds with an outcome (connect failures included).
    /// `echoed` (if given) is completed once as many bytes as were sent have come back.
    static func start(
        group: EventLoopGroup,
        host: String,
        port: Int,
        payload: ByteBuffer,
        halfClose: Bool = true,
        timeout: Duration = .seconds(60),
        echoed: EventLoopPromise<Void>? = nil
    ) -> EventLoopFuture<StreamOutcome> {
        let loop = group.next()
        let done = loop.makePromise(of: StreamOutcome.self)
        ClientBootstrap(group: loop)
            .channelOption(.allowRemoteHalfClosure, value: true)
            .channelOption(.socketOption(.tcp_nodelay), value: 1)
            .connectTimeout(.seconds(10))
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(
                        ExchangeHandler(
                            payload: payload,
                            halfClose: halfClose,
                            timeout: .nanoseconds(
                                Int64(timeout.components.seconds) * 1_000_000_000 + timeout.components.attoseconds / 1_000_000_000
                            ),
                            done: done,
                            echoed: echoed
                        )
                    )
                }
            }
            .connect(host: host, port: port)
            .whenFailure { error in
                echoed?.fail(error)
                done.succeed(StreamOutcome(received: ByteBuffer(), end: Self.classify(error)))
            }
        return done.futureResult
    }

    /// One blocking exchange, for tests that need only one.
    static func exchange(
        group: EventLoopGroup,
        host: String,
        port: Int,
        payload: ByteBuffer,
        timeout: Duration = .seconds(60)
    ) -> StreamOutcome {
        // The future always succeeds; the handler's own deadline bounds the wait.
        (try? self.start(group: group, host: host, port: port, payload: payload, timeout: timeout).wait())
            ?? StreamOutcome(received: ByteBuffer(), end: .error("no outcome"))
    }

    static func classify(_ error: Error) -> StreamEnd {
        if let io = error as? IOError, io.errnoCode == ECONNRESET { return .reset }
        // A reset that arrives before NIO saw the connect complete fails the connect instead.
        if let connect = error as? NIOConnectionError,
            connect.connectionErrors.contains(where: { ($0.error as? IOError)?.errnoCode == ECONNRESET })
        {
            return .reset
        }
        return .error("\(error)")
    }
}

private final class ExchangeHandler: StreamEndRecording {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private let payload: ByteBuffer
    private let halfClose: Bool
    private let timeout: TimeAmount
    private let done: EventLoopPromise<StreamOutcome>
    private var echoed: EventLoopPromise<Void>?
    private var received = ByteBuffer()
    var end: StreamEnd?
    private var finished = false
    private var deadline: Scheduled<Void>?

    init(
        payload: ByteBuffer,
        halfClose: Bool,
        timeout: TimeAmount,
        done: EventLoopPromise<StreamOutcome>,
        echoed: EventLoopPromise<Void>?
    ) {
        self.payload = payload
        self.halfClose = halfClose
        self.timeout = timeout
        self.done = done
        self.echoed = echoed
    }

    func channelActive(context: ChannelHandlerContext) {
        let channel = context.channel
        self.deadline = context.eventLoop.assumeIsolated().scheduleTask(in: self.timeout) {
            if self.end == nil { self.end = .timedOut }
            channel.close(promise: nil)
        }
        context.writeAndFlush(self.wrapOutboundOut(self.payload), promise: nil)
        if self.halfClose { context.close(mode: .output, promise: nil) }
        if self.payload.readableBytes == 0 {
            self.echoed?.succeed(())
            self.echoed = nil
        }
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var buffer = self.unwrapInboundIn(data)
        self.received.writeBuffer(&buffer)
        if self.received.readableBytes >= self.payload.readableBytes, let echoed = self.echoed {
            self.echoed = nil
            echoed.succeed(())
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        self.deadline?.cancel()
        guard !self.finished else { return }
        self.finished = true
        self.echoed?.fail(ChannelError.eof)
        self.echoed = nil
        // After our own half-close NIO turns the peer's FIN into a full close without an inputClosed
        // event; a reset always arrives through errorCaught first, so a quiet close here is the EOF.
        self.done.succeed(StreamOutcome(received: self.received, end: self.end ?? .eof))
    }
}
