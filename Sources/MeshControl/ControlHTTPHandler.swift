import Logging
import NIOCore
import NIOHTTP1

/// Serves one control connection: collects each request from NIOHTTP1's parser, asks its responder
/// (`ControlAPI` on the control socket, the `/metrics` route on the TCP metrics listener) for the
/// response, and writes it back on the connection's event loop. A connection whose peer credentials
/// were refused answers every request with 403.
final class ControlHTTPHandler: ChannelInboundHandler {
    /// Answers one request, given its method and URI (path and query).
    typealias Responder = @Sendable (HTTPMethod, String) async -> ControlResponse

    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    /// Requests carry no bodies worth reading; a larger one is refused rather than buffered.
    static let maxBodyBytes = 64 * 1024

    private let respond: Responder
    /// Why this client may not use the API, or nil when it may.
    private let refusal: String?
    private var head: HTTPRequestHead?
    private var bodyBytes = 0
    /// True while `ControlAPI` works on a request (a long ping sends nothing for seconds).
    private var answering = false

    init(respond: @escaping Responder, refusal: String?) {
        self.respond = respond
        self.refusal = refusal
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch self.unwrapInboundIn(data) {
        case .head(let head):
            self.head = head
            self.bodyBytes = 0
        case .body(let buffer):
            self.bodyBytes += buffer.readableBytes
        case .end:
            guard let head = self.head else { return }
            self.head = nil
            self.answer(head, context: context)
        }
    }

    /// An idle connection holds a descriptor in the agent; close it unless a request is being answered.
    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if event is IdleStateHandler.IdleStateEvent {
            if !self.answering { context.close(promise: nil) }
            return
        }
        context.fireUserInboundEventTriggered(event)
    }

    private func answer(_ head: HTTPRequestHead, context: ChannelHandlerContext) {
        if let refusal = self.refusal {
            self.write(.error(.forbidden, "permission denied: \(refusal)"), keepAlive: false, context: context)
            return
        }
        if self.bodyBytes > Self.maxBodyBytes {
            self.write(.error(.payloadTooLarge, "request body over \(Self.maxBodyBytes) bytes"), keepAlive: false, context: context)
            return
        }
        let respond = self.respond
        self.answering = true
        let promise = context.eventLoop.makePromise(of: ControlResponse.self)
        promise.completeWithTask { await respond(head.method, head.uri) }
        let bound = NIOLoopBound((handler: self, context: context), eventLoop: context.eventLoop)
        promise.futureResult.whenSuccess { response in
            bound.value.handler.answering = false
            bound.value.handler.write(response, keepAlive: head.isKeepAlive, context: bound.value.context)
        }
    }

    private func write(_ response: ControlResponse, keepAlive: Bool, context: ChannelHandlerContext) {
        var headers = HTTPHeaders()
        headers.add(name: "Content-Type", value: response.contentType)
        headers.add(name: "Content-Length", value: "\(response.body.count)")
        headers.add(name: "Connection", value: keepAlive ? "keep-alive" : "close")
        for (name, value) in response.headers { headers.add(name: name, value: value) }
        let head = HTTPResponseHead(version: .http1_1, status: response.status, headers: headers)
        context.write(self.wrapOutboundOut(.head(head)), promise: nil)
        context.write(self.wrapOutboundOut(.body(.byteBuffer(ByteBuffer(bytes: response.body)))), promise: nil)
        let written = context.eventLoop.makePromise(of: Void.self)
        context.writeAndFlush(self.wrapOutboundOut(.end(nil)), promise: written)
        if !keepAlive {
            let channel = context.channel
            written.futureResult.whenComplete { _ in channel.close(promise: nil) }
        }
    }
}
