import NIOCore

/// One side of a splice. See `Splice` for the rules it keeps.
// @unchecked: every member is touched only on `loop`; the partner reaches it through `SplicePartner`,
// which hops there first.
final class SpliceHandler: ChannelDuplexHandler, @unchecked Sendable {
    typealias InboundIn = ByteBuffer
    typealias OutboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    /// This side's lifecycle: each direction finishes on its own, then the channel closes.
    enum State: Equatable {
        /// Not in its pipeline yet: what the partner sent so far waits here, in order.
        case detached(early: [SpliceSignal])
        /// `input`: read while the partner can take the bytes.
        case open(input: SocketInput, output: Output)
        /// Both directions finished, or one was cut: nothing more goes either way.
        case closed
    }

    /// Our channel's output, which carries what the partner read.
    enum Output: Equatable {
        /// Writing; `toldPartnerFull`: we asked the partner to pause until our channel drains.
        case open(toldPartnerFull: Bool)
        /// Half-closed after the partner's end.
        case finished
    }

    let loop: EventLoop
    var partner: SplicePartner?
    private(set) var state: State = .detached(early: [])
    private var context: ChannelHandlerContext?
    /// What our channel read in the current read burst, sent to the partner at its end.
    private var batch: [ByteBuffer] = []

    init(loop: EventLoop) {
        self.loop = loop
    }

    /// Acts on what the partner already sent, then lets it start reading.
    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        LocalSocket.begin(context)
        guard case .detached(let early) = self.state else { return }
        self.state = .open(input: .paused(readHeld: false), output: .open(toldPartnerFull: false))
        for signal in early { self.receive(signal) }
        self.partner?.send(.partnerWritable(true))
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        self.context = nil
    }

    // MARK: Our channel

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        self.batch.append(self.unwrapInboundIn(data))
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        self.sendBatch()
        context.fireChannelReadComplete()
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if LocalSocket.isEndOfInput(event) {
            self.inputEnded()
        } else {
            context.fireUserInboundEventTriggered(event)
        }
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        if context.channel.isWritable, case .open(let input, .open(toldPartnerFull: true)) = self.state {
            self.state = .open(input: input, output: .open(toldPartnerFull: false))
            self.partner?.send(.partnerWritable(true))
        }
        context.fireChannelWritabilityChanged()
    }

    func channelInactive(context: ChannelHandlerContext) {
        if case .open(let input, .finished) = self.state, input.isOpen {
            // NIO closes a socket whose output we already shut down when its input reaches EOF,
            // without an `inputClosed` event: that is a clean end of input, not a failure.
            self.inputEnded()
        }
        self.sendBatch()
        let finished: Bool
        switch self.state {
        case .open(.ended, .finished), .closed: finished = true
        case .open, .detached: finished = false
        }
        self.state = .closed
        if !finished { self.partner?.send(.abort) }
        self.partner = nil
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        // A socket error ends this side; channelInactive tells the partner to abort.
        if case .open(_, let output) = self.state { self.state = .open(input: .failed, output: output) }
        context.close(promise: nil)
    }

    func read(context: ChannelHandlerContext) {
        guard case .open(var input, let output) = self.state else { return }
        let now = input.readRequested()
        self.state = .open(input: input, output: output)
        if now { context.read() }
    }

    // MARK: Signals from the partner

    func receive(_ signal: SpliceSignal) {
        guard case .open(let input, let output) = self.state, let context else {
            if case .detached(var early) = self.state {
                early.append(signal)
                self.state = .detached(early: early)
            }
            return
        }
        switch (signal, output) {
        case (.abort, _):
            self.state = .closed
            LocalSocket.abort(context)

        case (.bytes(let buffers), .open(let toldPartnerFull)):
            for buffer in buffers { context.write(self.wrapOutboundOut(buffer), promise: nil) }
            context.flush()
            if !context.channel.isWritable, !toldPartnerFull {
                self.state = .open(input: input, output: .open(toldPartnerFull: true))
                self.partner?.send(.partnerWritable(false))
            }

        case (.bytes, .finished), (.end, .finished):
            return  // the partner sends nothing after `end`

        case (.end, .open):
            self.state = .open(input: input, output: .finished)
            LocalSocket.finishOutput(context)
            self.closeIfDone(context)

        case (.partnerWritable(let writable), _):
            var input = input
            let heldRead = input.farSide(canTake: writable)
            self.state = .open(input: input, output: output)
            if heldRead { context.read() }
        }
    }

    // MARK: Helpers

    private func sendBatch() {
        guard !self.batch.isEmpty else { return }
        let buffers = self.batch
        self.batch.removeAll(keepingCapacity: true)
        self.partner?.send(.bytes(buffers))
    }

    private func inputEnded() {
        self.sendBatch()
        guard case .open(let input, let output) = self.state, input.isOpen else { return }
        self.state = .open(input: .ended, output: output)
        self.partner?.send(.end)
        if let context { self.closeIfDone(context) }
    }

    private func closeIfDone(_ context: ChannelHandlerContext) {
        guard case .open(.ended, .finished) = self.state else { return }
        LocalSocket.closeWhenDone(context)
    }
}
