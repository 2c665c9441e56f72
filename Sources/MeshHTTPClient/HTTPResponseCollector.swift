import Foundation
import NIOCore
import NIOHTTP1

/// Gathers one HTTP response into a status and a body and completes the request's promise. The body
/// ends at the response's end, which for an HTTP/1.0 server without Content-Length (Patroni's REST
/// API) is the server's close: the decoder delivers `.end` before `channelInactive` gets here.
final class HTTPResponseCollector: ChannelInboundHandler {
    typealias InboundIn = HTTPClientResponsePart

    private let promise: EventLoopPromise<(HTTPResponseStatus, Data)>
    private let maxBodyBytes: Int
    private var status: HTTPResponseStatus?
    private var body = ByteBuffer()

    init(promise: EventLoopPromise<(HTTPResponseStatus, Data)>, maxBodyBytes: Int) {
        self.promise = promise
        self.maxBodyBytes = maxBodyBytes
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch self.unwrapInboundIn(data) {
        case .head(let head):
            self.status = head.status
        case .body(var buffer):
            guard self.body.readableBytes + buffer.readableBytes <= self.maxBodyBytes else {
                self.promise.fail(HTTPResponseTooLarge(limit: self.maxBodyBytes))
                context.close(promise: nil)
                return
            }
            self.body.writeBuffer(&buffer)
        case .end:
            if let status = self.status {
                self.promise.succeed((status, Data(self.body.readableBytesView)))
            }
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        self.promise.fail(HTTPConnectionClosed())
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        self.promise.fail(error)
        context.close(promise: nil)
    }
}
