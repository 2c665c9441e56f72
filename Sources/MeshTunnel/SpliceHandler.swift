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
        case open(input: Input, output: Output)
        /// Both directions finished, or one was cut: nothing more goes either way.
        case closed
    }

    /// Our channel's input, which we read only while the partner can take the bytes.
    enum Input: Equatable {
        /// The partner is writable: reads pass.
        case flowing
        /// The partner is not writable (or not there yet); `readHeld`: NIO asked for a read meanwhile.
        case paused(readHeld: Bool)
        /// Our channel's input ended cleanly and the partner was told.
        case ended
        /// An error ended our channel: its closing is not a clean end of input.
        case failed
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
        if case .open(let input, .finished) = self.state, input != .ended, input != .failed {
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
        switch self.state {
        case .open(.flowing, _):
            context.read()
        case .open(.paused, let output):
            self.state = .open(input: .paused(readHeld: true), output: output)
        case .open(.ended, _), .open(.failed, _), .detached, .closed:
            break
        }
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
            switch (input, writable) {
            case (.paused(let readHeld), true):
                self.state = .open(input: .flowing, output: output)
                if readHeld { context.read() }
            case (.flowing, false):
                self.state = .open(input: .paused(readHeld: false), output: output)
            case (.paused, false), (.flowing, true), (.ended, _), (.failed, _):
                break
            }
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
        guard case .open(let input, let output) = self.state, input != .ended, input != .failed else { return }
        self.state = .open(input: .ended, output: output)
        self.partner?.send(.end)
        if let context { self.closeIfDone(context) }
    }

    private func closeIfDone(_ context: ChannelHandlerContext) {
        guard case .open(.ended, .finished) = self.state else { return }
        LocalSocket.closeWhenDone(context)
    }
}
