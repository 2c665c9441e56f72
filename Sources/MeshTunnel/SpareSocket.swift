import NIOCore

/// The handler on a spare connection (see `SpareConnections`) while it waits for a stream. It
/// tells the pool when the connection ends before a stream took it, or when the target sent bytes
/// first: then the target's protocol is not one where the client speaks first, a spare would
/// change what a client sees, and the pool stops keeping spares for it. `claim` hands the channel
/// to a stream's handler. Touched only on the channel's event loop.
final class SpareSocket: ChannelInboundHandler, RemovableChannelHandler, @unchecked Sendable {
    typealias InboundIn = ByteBuffer

    /// How a spare ended before any stream took it.
    enum Ending {
        /// Closed, reset or failed (the server gave up on a connection that sent nothing, or stopped).
        case closed
        /// The target sent bytes before any client did.
        case spokeFirst
    }

    private enum State {
        case waiting(ChannelHandlerContext?)
        /// Claimed by a stream or ended; nothing more is reported.
        case done
    }

    private var state = State.waiting(nil)
    private let ended: (SpareSocket, Ending) -> Void

    /// `ended` runs at most once, on the loop, and never after a successful `claim`.
    init(ended: @escaping (SpareSocket, Ending) -> Void) {
        self.ended = ended
    }

    /// Whether the connection is still waiting, open, for a stream.
    var isWaiting: Bool {
        if case .waiting(let context?) = self.state { return context.channel.isActive }
        return false
    }

    func handlerAdded(context: ChannelHandlerContext) {
        if case .waiting = self.state { self.state = .waiting(context) }
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        self.end(.spokeFirst, closing: context)
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if LocalSocket.isEndOfInput(event) { self.end(.closed, closing: context) }
    }

    func channelInactive(context: ChannelHandlerContext) {
        self.end(.closed, closing: nil)
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        self.end(.closed, closing: context)
    }

    /// Puts `handler` in this one's place: from here on the connection is the stream's. False,
    /// changing nothing, when the connection already ended.
    func claim(for handler: ChannelHandler) -> Bool {
        guard case .waiting(let context?) = self.state, context.channel.isActive else { return false }
        let pipeline = context.pipeline.syncOperations
        do {
            try pipeline.addHandler(handler)
        } catch {
            return false
        }
        self.state = .done
        pipeline.removeHandler(context: context, promise: nil)
        return true
    }

    /// Closes the connection without reporting it: the pool dropped it.
    func close() {
        guard case .waiting(let context) = self.state else { return }
        self.state = .done
        context?.close(promise: nil)
    }

    private func end(_ ending: Ending, closing context: ChannelHandlerContext?) {
        guard case .waiting = self.state else { return }
        self.state = .done
        context?.close(promise: nil)
        self.ended(self, ending)
    }
}
