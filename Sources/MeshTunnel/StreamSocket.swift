import NIOCore

/// The local end of a tunnel stream: the handler on a forward's client connection, on a balancer
/// session's client connection, or on the connection a serving node made to its service. It moves
/// bytes between its socket and the stream's frames in `TunnelStreams`, and keeps three promises:
///
/// - Backpressure end to end: it reads only while the stream has send credit and the tunnel can
///   take more (`setReadable`); bytes it writes to the socket are credited back to the peer only
///   once the socket took them (the channel is writable), so a slow reader slows the far writer
///   and nothing buffers without bound.
/// - Half-close both ways: EOF on the socket becomes END_STREAM; END_STREAM becomes a FIN after
///   every byte queued before it.
/// - Never a silent truncation: a stream cut before both directions finished resets the socket
///   (RST). The socket carries SO_LINGER 0 from the start, so even when meshd dies (kill -9) the
///   kernel resets it rather than sending a FIN; it loses that only once its output ended cleanly.
///
/// It usually lives on its tunnel's event loop, and then every call between the two is a direct
/// call; a socket on another loop (a balancer session that could not be accepted there) hops
/// message by message. Everything here is touched only on `loop`.
final class StreamSocket: ChannelDuplexHandler, @unchecked Sendable {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer
    typealias OutboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private enum State {
        /// Carrying bytes; each direction ends on its own, then the socket closes. `input` is read
        /// while the stream has send credit and the tunnel can take more (`setReadable`).
        case open(input: SocketInput, output: Output)
        /// The stream did not open: the channel is its opener's again, to answer and close.
        case detached
        case closed
    }

    /// The socket's output, which carries what the peer sends.
    private enum Output: Equatable {
        /// Writing; `heldCredit`: credit for bytes written while the socket was not writable,
        /// granted to the peer once it is again.
        case open(heldCredit: Int)
        /// Half-closed after the peer's END_STREAM.
        case ended
    }

    let loop: EventLoop
    private let tunnel: TunnelSide
    private var state = State.open(input: .paused(readHeld: false), output: .open(heldCredit: 0))
    private var context: ChannelHandlerContext?

    init(loop: EventLoop, tunnel: TunnelSide) {
        self.loop = loop
        self.tunnel = tunnel
    }

    // MARK: The socket

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        LocalSocket.begin(context)
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        self.context = nil
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch self.state {
        case .open(let input, _) where input.isOpen:
            self.tunnel.read(self.unwrapInboundIn(data))
        case .detached:
            context.fireChannelRead(data)
        case .open, .closed:
            break
        }
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        switch self.state {
        case .open(let input, _) where input.isOpen: self.tunnel.readComplete()
        case .detached: context.fireChannelReadComplete()
        case .open, .closed: break
        }
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if case .open = self.state, LocalSocket.isEndOfInput(event) {
            self.inputEnded()
        } else {
            context.fireUserInboundEventTriggered(event)
        }
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        if context.channel.isWritable, case .open(let input, .open(let credit)) = self.state, credit > 0 {
            self.state = .open(input: input, output: .open(heldCredit: 0))
            self.tunnel.credit(credit)
        }
        context.fireChannelWritabilityChanged()
    }

    func channelInactive(context: ChannelHandlerContext) {
        if case .open(let input, .ended) = self.state, input.isOpen {
            // NIO closes a socket whose output we already shut down when its input reaches EOF,
            // without an `inputClosed` event: that is a clean end of input, not a failure.
            self.inputEnded()
        }
        if case .open(let input, let output) = self.state {
            self.state = .closed
            self.tunnel.closed(finished: input == .ended && output == .ended)
        }
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        switch self.state {
        case .detached:
            return context.fireErrorCaught(error)
        case .open(_, let output):
            // A socket error ends the stream; channelInactive tells the tunnel to reset it.
            self.state = .open(input: .failed, output: output)
        case .closed:
            break
        }
        context.close(promise: nil)
    }

    func read(context: ChannelHandlerContext) {
        switch self.state {
        case .open(var input, let output):
            let now = input.readRequested()
            self.state = .open(input: input, output: output)
            if now { context.read() }
        case .detached:
            context.read()
        case .closed:
            break
        }
    }

    private func inputEnded() {
        guard case .open(let input, let output) = self.state, input.isOpen else { return }
        self.state = .open(input: .ended, output: output)
        self.tunnel.inputEnded()
        self.closeIfDone()
    }

    private func closeIfDone() {
        guard case .open(.ended, .ended) = self.state, let context else { return }
        LocalSocket.closeWhenDone(context)
    }

    // MARK: Calls from the tunnel (any thread; they run on `loop`)

    /// Writes bytes the peer sent (flushed by `flush()`), worth `credit` bytes of stream window.
    func deliver(_ bytes: ByteBuffer, credit: Int) {
        guard self.loop.inEventLoop else { return self.loop.execute { self.deliver(bytes, credit: credit) } }
        guard case .open(let input, .open(let held)) = self.state, let context else { return }
        context.write(self.wrapOutboundOut(bytes), promise: nil)
        if context.channel.isWritable {
            self.tunnel.credit(credit)
        } else {
            self.state = .open(input: input, output: .open(heldCredit: held + credit))
        }
    }

    func flush() {
        guard self.loop.inEventLoop else { return self.loop.execute { self.flush() } }
        guard case .open = self.state, let context else { return }
        context.flush()
    }

    /// The peer ended its side: FIN once every queued byte is out.
    func finishOutput() {
        guard self.loop.inEventLoop else { return self.loop.execute { self.finishOutput() } }
        guard case .open(let input, .open) = self.state, let context else { return }
        self.state = .open(input: input, output: .ended)
        LocalSocket.finishOutput(context)
        self.closeIfDone()
    }

    /// The stream was cut: reset the socket.
    func abort() {
        guard self.loop.inEventLoop else { return self.loop.execute { self.abort() } }
        guard case .open = self.state, let context else { return }
        self.state = .closed
        LocalSocket.abort(context)
    }

    func setReadable(_ readable: Bool) {
        guard self.loop.inEventLoop else { return self.loop.execute { self.setReadable(readable) } }
        guard case .open(var input, let output) = self.state else { return }
        let heldRead = input.farSide(canTake: readable)
        self.state = .open(input: input, output: output)
        if heldRead, let context { context.read() }
    }

    /// The stream did not open. The channel goes back to its opener (which answers the client in
    /// its own protocol, or resets it), with normal lingering so an answer is not cut by a reset.
    /// Runs before the opener hears of the failure, so it acts on a released channel.
    func detach() {
        guard self.loop.inEventLoop else { return self.loop.execute { self.detach() } }
        guard case .open(let input, _) = self.state, let context else { return }
        self.state = .detached
        LocalSocket.restoreLingering(context.channel)
        if input == .paused(readHeld: true) { context.read() }
    }
}
