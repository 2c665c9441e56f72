import MeshTestSupport
import NIOCore

/// A client handler that remembers how its stream ended: EOF when the peer's FIN arrives (then it
/// closes), otherwise the first error, classified. The first ending wins, so a reset that follows
/// our own close does not overwrite the EOF that came before it.
protocol StreamEndRecording: ChannelInboundHandler, AnyObject {
    var end: StreamEnd? { get set }
}

extension StreamEndRecording {
    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if case ChannelEvent.inputClosed = event {
            if self.end == nil { self.end = .eof }
            context.close(promise: nil)
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        if self.end == nil { self.end = StreamClient.classify(error) }
        context.close(promise: nil)
    }
}
