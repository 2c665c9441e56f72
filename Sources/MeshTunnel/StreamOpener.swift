import NIOCore
import NIOHPACK
import NIOHTTP2

/// The first handler of a stream this node opens: sends the CONNECT request, waits for the answer,
/// then lets the splice behind it run. A refusal half-closes the stream cleanly (END_STREAM, no
/// RST_STREAM), which closes it, and the splice resets the local client.
final class StreamOpener: ChannelInboundHandler {
    typealias InboundIn = HTTP2Frame.FramePayload
    typealias InboundOut = HTTP2Frame.FramePayload
    typealias OutboundOut = HTTP2Frame.FramePayload

    private enum State {
        case awaitingResponse(EventLoopPromise<Void>)
        case accepted
        case refused
    }

    private let headers: HPACKHeaders
    private let service: String
    private let peer: String
    private let onAccepted: () -> Void
    private var state: State

    init(headers: HPACKHeaders, peer: String, promise: EventLoopPromise<Void>, onAccepted: @escaping () -> Void) {
        self.headers = headers
        self.service = headers.first(name: ":authority") ?? "?"
        self.peer = peer
        self.onAccepted = onAccepted
        self.state = .awaitingResponse(promise)
    }

    func channelActive(context: ChannelHandlerContext) {
        let request = HTTP2Frame.FramePayload.headers(.init(headers: self.headers))
        context.writeAndFlush(self.wrapOutboundOut(request), promise: nil)
        context.fireChannelActive()
    }

    func handlerAdded(context: ChannelHandlerContext) {
        if context.channel.isActive { self.channelActive(context: context) }
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard case .awaitingResponse(let promise) = self.state else {
            if case .accepted = self.state { context.fireChannelRead(data) }
            return
        }
        guard case .headers(let response) = self.unwrapInboundIn(data) else { return }
        let status = response.headers.first(name: ":status").flatMap { Int($0) } ?? 0
        if status == 200 {
            self.state = .accepted
            promise.succeed(())
            self.onAccepted()
            if response.endStream { context.fireChannelRead(data) }
        } else {
            self.state = .refused
            promise.fail(StreamRefusedError(
                peer: self.peer, service: self.service, status: status,
                reason: response.headers.first(name: "tm-reason")))
            if !response.endStream {
                // The server always ends a refusal; if it did not, do not wait for it.
                context.close(promise: nil)
                return
            }
            let end = HTTP2Frame.FramePayload.data(.init(data: .byteBuffer(ByteBuffer()), endStream: true))
            context.writeAndFlush(self.wrapOutboundOut(end), promise: nil)
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        if case .awaitingResponse(let promise) = self.state {
            self.state = .refused
            promise.fail(ChannelError.eof)
        }
        context.fireChannelInactive()
    }
}
