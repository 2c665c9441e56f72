import Foundation
import NIOCore
import NIOHTTP1

/// Gathers one HTTP response into a status and a body and completes the request's promise.
final class ControlResponseCollector: ChannelInboundHandler {
    typealias InboundIn = HTTPClientResponsePart

    private let promise: EventLoopPromise<(HTTPResponseStatus, Data)>
    private var status: HTTPResponseStatus?
    private var body = ByteBuffer()

    init(promise: EventLoopPromise<(HTTPResponseStatus, Data)>) {
        self.promise = promise
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch self.unwrapInboundIn(data) {
        case .head(let head):
            self.status = head.status
        case .body(var buffer):
            self.body.writeBuffer(&buffer)
        case .end:
            if let status = self.status {
                self.promise.succeed((status, Data(self.body.readableBytesView)))
            }
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        self.promise.fail(ControlConnectionClosed())
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        self.promise.fail(error)
        context.close(promise: nil)
    }
}
