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
        /// Carrying bytes; each direction ends on its own, then the socket closes.
        case open(inputEnded: Bool, outputEnded: Bool)
        /// The stream did not open: the channel is its opener's again, to answer and close.
        case detached
        case closed
    }

    let loop: EventLoop
    private let tunnel: TunnelSide
    private var state = State.open(inputEnded: false, outputEnded: false)
    private var context: ChannelHandlerContext?
    /// The tunnel lets us read (the stream has credit and the tunnel is writable).
    private var readable = false
    /// NIO asked for a read while we were not readable: do it once we are.
    private var readHeld = false
    /// Credit for bytes written while the socket was not writable, granted once it is again.
    private var heldCredit = 0
    /// An error was caught on the channel: its closing is not a clean end of input.
    private var failed = false

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
        case .open(inputEnded: false, _):
            self.tunnel.read(self.unwrapInboundIn(data))
        case .detached:
            context.fireChannelRead(data)
        case .open, .closed:
            break
        }
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        switch self.state {
        case .open(inputEnded: false, _): self.tunnel.readComplete()
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
        if context.channel.isWritable, self.heldCredit > 0 {
            let credit = self.heldCredit
            self.heldCredit = 0
            self.tunnel.credit(credit)
        }
        context.fireChannelWritabilityChanged()
    }

    func channelInactive(context: ChannelHandlerContext) {
        if !self.failed, case .open(inputEnded: false, outputEnded: true) = self.state {
            // NIO closes a socket whose output we already shut down when its input reaches EOF,
            // without an `inputClosed` event: that is a clean end of input, not a failure.
            self.inputEnded()
        }
        switch self.state {
        case .open(let inputEnded, let outputEnded):
            self.state = .closed
            self.tunnel.closed(finished: inputEnded && outputEnded)
        case .detached, .closed:
            break
        }
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        if case .detached = self.state { return context.fireErrorCaught(error) }
        // A socket error ends the stream; channelInactive tells the tunnel to reset it.
        self.failed = true
        context.close(promise: nil)
    }

    func read(context: ChannelHandlerContext) {
        switch self.state {
        case .open(inputEnded: false, _) where self.readable: context.read()
        case .open(inputEnded: false, _): self.readHeld = true
        case .detached: context.read()
        case .open, .closed: break
        }
    }

    private func inputEnded() {
        guard case .open(inputEnded: false, let outputEnded) = self.state else { return }
        self.state = .open(inputEnded: true, outputEnded: outputEnded)
        self.tunnel.inputEnded()
        self.closeIfDone()
    }

    private func closeIfDone() {
        guard case .open(inputEnded: true, outputEnded: true) = self.state, let context else { return }
        LocalSocket.closeWhenDone(context)
    }

    // MARK: Calls from the tunnel (any thread; they run on `loop`)

    /// Writes bytes the peer sent (flushed by `flush()`), worth `credit` bytes of stream window.
    func deliver(_ bytes: ByteBuffer, credit: Int) {
        guard self.loop.inEventLoop else { return self.loop.execute { self.deliver(bytes, credit: credit) } }
        guard case .open(_, outputEnded: false) = self.state, let context else { return }
        context.write(self.wrapOutboundOut(bytes), promise: nil)
        if context.channel.isWritable {
            self.tunnel.credit(credit)
        } else {
            self.heldCredit += credit
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
        guard case .open(let inputEnded, outputEnded: false) = self.state, let context else { return }
        self.state = .open(inputEnded: inputEnded, outputEnded: true)
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
        self.readable = readable
        if readable, self.readHeld, let context {
            self.readHeld = false
            context.read()
        }
    }

    /// The stream did not open. The channel goes back to its opener (which answers the client in
    /// its own protocol, or resets it), with normal lingering so an answer is not cut by a reset.
    /// Runs before the opener hears of the failure, so it acts on a released channel.
    func detach() {
        guard self.loop.inEventLoop else { return self.loop.execute { self.detach() } }
        guard case .open = self.state, let context else { return }
        self.state = .detached
        LocalSocket.restoreLingering(context.channel)
        if self.readHeld {
            self.readHeld = false
            context.read()
        }
    }
}
