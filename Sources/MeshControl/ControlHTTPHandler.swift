import Logging
import NIOCore
import NIOHTTP1

/// Serves one control connection: collects each request from NIOHTTP1's parser, asks its responder
/// (`ControlAPI` on the control socket, the `/metrics` route on the TCP metrics listener) for the
/// response, and writes it back on the connection's event loop. A connection whose peer credentials
/// were refused answers every request with 403.
final class ControlHTTPHandler: ChannelInboundHandler {
    /// Answers one request, given its method, URI (path and query) and body.
    typealias Responder = @Sendable (HTTPMethod, String, ByteBuffer) async -> ControlResponse

    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    /// Only a dry run's mesh.json is a body worth reading; a larger one is refused rather than buffered.
    static let defaultMaxBodyBytes = 64 * 1024

    private let respond: Responder
    /// Why this client may not use the API, or nil when it may.
    private let refusal: String?
    private let maxBodyBytes: Int
    private var head: HTTPRequestHead?
    private var bodyBytes = 0
    /// The request's body, kept while it stays within `maxBodyBytes`.
    private var body = ByteBuffer()
    /// True while `ControlAPI` works on a request (a long ping sends nothing for seconds).
    private var answering = false

    init(respond: @escaping Responder, refusal: String?, maxBodyBytes: Int = ControlHTTPHandler.defaultMaxBodyBytes) {
        self.respond = respond
        self.refusal = refusal
        self.maxBodyBytes = maxBodyBytes
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch self.unwrapInboundIn(data) {
        case .head(let head):
            self.head = head
            self.bodyBytes = 0
            self.body.clear()
        case .body(var buffer):
            self.bodyBytes += buffer.readableBytes
            if self.refusal == nil, self.bodyBytes <= self.maxBodyBytes { self.body.writeBuffer(&buffer) }
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
        if self.bodyBytes > self.maxBodyBytes {
            self.write(.error(.payloadTooLarge, "request body over \(self.maxBodyBytes) bytes"), keepAlive: false, context: context)
            return
        }
        let respond = self.respond
        let body = self.body
        self.body = ByteBuffer()
        self.answering = true
        let promise = context.eventLoop.makePromise(of: ControlResponse.self)
        promise.completeWithTask { await respond(head.method, head.uri, body) }
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
