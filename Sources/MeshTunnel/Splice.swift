import NIOCore

/// Carries bytes both ways between two local sockets on this node: a balancer session routed to
/// this node's own service (no tunnel between), with backpressure, half-close and reset semantics:
///
/// - A side reads only while its partner is writable, so a slow reader slows the writer and nothing
///   buffers without bound.
/// - EOF on one side becomes a half-close (FIN) on the other, both ways.
/// - A side that dies before both directions finished makes the other side abort: its socket is
///   reset (RST via SO_LINGER 0), never closed with FIN, so a client cannot take a cut stream for a
///   complete one. That holds even when meshd itself dies: sockets carry SO_LINGER 0 from the
///   start and lose it only when their output ends cleanly.
///
/// Tunnel streams do not use this: `StreamSocket` joins a socket to a stream in `TunnelStreams`.
/// The two channels may live on different event loops; signals hop loops only when they must.
enum Splice {}

extension Splice {
    /// Two TCP sides, for a connection to a service this node serves itself (no tunnel between):
    /// the accepted client's side reads once the service's side is added, and vice versa.
    static func makeLocalPair(clientLoop: EventLoop, serviceLoop: EventLoop) -> (client: SpliceHandler<TCPWire>, service: SpliceHandler<TCPWire>) {
        let client = SpliceHandler<TCPWire>(loop: clientLoop)
        let service = SpliceHandler<TCPWire>(loop: serviceLoop)
        client.partner = SplicePartner(service)
        service.partner = SplicePartner(client)
        return (client, service)
    }
}

/// A message from one side of a splice to the other.
enum SpliceSignal {
    /// Bytes the partner read, to be written and flushed here.
    case bytes([ByteBuffer])
    /// The partner's input ended cleanly: half-close our output.
    case end
    /// The partner died before finishing: reset our side.
    case abort
    /// The partner's channel can (or cannot) take more bytes: resume (or pause) our reads.
    case partnerWritable(Bool)
}

/// How one kind of channel speaks in a splice.
protocol SpliceWire {
    associatedtype Message
    /// Bytes in an inbound message, and whether it ends the input.
    static func unwrap(_ message: Message) -> (bytes: ByteBuffer?, ends: Bool)
    static func wrap(_ bytes: ByteBuffer) -> Message
    static func isEndOfInput(_ event: Any) -> Bool
    /// Prepares the channel when the splice takes it over.
    static func begin(_ context: ChannelHandlerContext)
    static func finishOutput(_ context: ChannelHandlerContext)
    static func abort(_ context: ChannelHandlerContext)
    /// Whether the channel should be closed by us once both directions have finished.
    static var closesWhenDone: Bool { get }
    /// Closes the channel once both directions finished (only called when `closesWhenDone`).
    static func closeWhenDone(_ context: ChannelHandlerContext)
}

/// A local socket: FIN is `close(mode: .output)`, abort is RST.
enum TCPWire: SpliceWire {
    static func unwrap(_ message: ByteBuffer) -> (bytes: ByteBuffer?, ends: Bool) { (message, false) }
    static func wrap(_ bytes: ByteBuffer) -> ByteBuffer { bytes }
    static func isEndOfInput(_ event: Any) -> Bool {
        if case .some(.inputClosed) = event as? ChannelEvent { return true }
        return false
    }
    /// SO_LINGER {on, 0} while the stream is unfinished: if meshd dies (kill -9, a crash), the
    /// kernel closes the socket for it, and without this that close is a FIN after whatever bytes
    /// had arrived, which the peer would take for a complete stream (a silent truncation). With it
    /// the peer is reset.
    static func begin(_ context: ChannelHandlerContext) {
        _ = (context.channel as? SocketOptionProvider)?.setSoLinger(NIOLinger(l_onoff: 1, l_linger: 0))
    }
    /// Shuts our output only once every byte written before it reached the socket: NIO turns an
    /// output close on a socket whose input already ended into a full close, which would drop
    /// writes still queued (a client reading slowly would see EOF early: a silent truncation).
    /// Lingering is restored first: from here on, the kernel owes the peer our bytes and a FIN.
    static func finishOutput(_ context: ChannelHandlerContext) {
        let channel = context.channel
        Self.afterQueuedWrites(context) {
            Self.restoreLingering(channel)
            channel.close(mode: .output, promise: nil)
        }
    }
    static func closeWhenDone(_ context: ChannelHandlerContext) {
        let channel = context.channel
        Self.afterQueuedWrites(context) {
            Self.restoreLingering(channel)
            channel.close(promise: nil)
        }
    }
    /// Normal lingering (SO_LINGER off): close() sends what is queued, then FIN.
    static func restoreLingering(_ channel: Channel) {
        _ = (channel as? SocketOptionProvider)?.setSoLinger(NIOLinger(l_onoff: 0, l_linger: 0))
    }
    /// Runs `body` once the writes queued so far are in the kernel (writes complete in order).
    private static func afterQueuedWrites(_ context: ChannelHandlerContext, _ body: @escaping @Sendable () -> Void) {
        let written = context.eventLoop.makePromise(of: Void.self)
        context.writeAndFlush(NIOAny(ByteBuffer()), promise: written)
        written.futureResult.whenComplete { _ in body() }
    }
    static func abort(_ context: ChannelHandlerContext) {
        TCPReset.reset(context.channel)
    }
    static var closesWhenDone: Bool { true }
}

/// A reference to the other side's handler, used only on that handler's event loop.
struct SplicePartner: @unchecked Sendable {
    private let handler: any SpliceSignalReceiver
    private let loop: EventLoop

    init<Wire>(_ handler: SpliceHandler<Wire>) {
        self.handler = handler
        self.loop = handler.loop
    }

    func send(_ signal: SpliceSignal) {
        if self.loop.inEventLoop {
            self.handler.receive(signal)
        } else {
            let transfer = self
            self.loop.execute { transfer.handler.receive(signal) }
        }
    }
}

protocol SpliceSignalReceiver: AnyObject {
    func receive(_ signal: SpliceSignal)
}

/// One side of a splice. See `Splice` for the rules it keeps.
// @unchecked: every member is touched only on `loop`; the partner reaches it through `SplicePartner`,
// which hops there first.
final class SpliceHandler<Wire: SpliceWire>: ChannelDuplexHandler, SpliceSignalReceiver, @unchecked Sendable {
    typealias InboundIn = Wire.Message
    typealias OutboundIn = Wire.Message
    typealias OutboundOut = Wire.Message

    /// The lifecycle of this side: each direction finishes on its own, then the channel closes.
    private enum State {
        /// `inputDone`: our channel's input ended; `outputDone`: we half-closed our output.
        case open(inputDone: Bool, outputDone: Bool)
        case closed
    }

    let loop: EventLoop
    var partner: SplicePartner?
    private var state: State = .open(inputDone: false, outputDone: false)
    private var context: ChannelHandlerContext?
    /// Signals that arrived before this side was added to its channel, in order.
    private var early: [SpliceSignal] = []
    private var partnerWritable = false
    private var readHeld = false
    private var toldPartnerUnwritable = false
    private var batch: [ByteBuffer] = []
    /// An error was caught on our channel: its closing is not a clean end of input.
    private var failed = false

    init(loop: EventLoop) {
        self.loop = loop
    }

    /// Acts on what the partner already sent, then lets it start reading.
    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        Wire.begin(context)
        let early = self.early
        self.early = []
        for signal in early { self.receive(signal) }
        self.partner?.send(.partnerWritable(true))
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        self.context = nil
    }

    // MARK: Our channel

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let (bytes, ends) = Wire.unwrap(self.unwrapInboundIn(data))
        if let bytes { self.batch.append(bytes) }
        if ends { self.inputEnded() }
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        self.sendBatch()
        context.fireChannelReadComplete()
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if Wire.isEndOfInput(event) {
            self.inputEnded()
        } else {
            context.fireUserInboundEventTriggered(event)
        }
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        if context.channel.isWritable, self.toldPartnerUnwritable {
            self.toldPartnerUnwritable = false
            self.partner?.send(.partnerWritable(true))
        }
        context.fireChannelWritabilityChanged()
    }

    func channelInactive(context: ChannelHandlerContext) {
        if Wire.closesWhenDone, !self.failed, case .open(inputDone: false, outputDone: true) = self.state {
            // NIO closes a socket whose output we already shut down when its input reaches EOF,
            // without an `inputClosed` event: that is a clean end of input, not a failure.
            self.inputEnded()
        }
        let finished: Bool
        switch self.state {
        case .open(inputDone: true, outputDone: true), .closed: finished = true
        case .open: finished = false
        }
        self.sendBatch()
        self.state = .closed
        if !finished { self.partner?.send(.abort) }
        self.partner = nil
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        // A socket or stream error ends this side; channelInactive tells the partner to abort.
        self.failed = true
        context.close(promise: nil)
    }

    func read(context: ChannelHandlerContext) {
        switch self.state {
        case .open(inputDone: false, _) where self.partnerWritable:
            context.read()
        case .open(inputDone: false, _):
            self.readHeld = true
        case .open(inputDone: true, _), .closed:
            break
        }
    }

    // MARK: Signals from the partner

    func receive(_ signal: SpliceSignal) {
        guard let context = self.context else {
            if case .open = self.state { self.early.append(signal) }
            return
        }
        switch (self.state, signal) {
        case (.closed, _):
            return

        case (.open, .abort):
            self.state = .closed
            Wire.abort(context)

        case (.open(_, outputDone: false), .bytes(let buffers)):
            for buffer in buffers { context.write(self.wrapOutboundOut(Wire.wrap(buffer)), promise: nil) }
            context.flush()
            if !context.channel.isWritable, !self.toldPartnerUnwritable {
                self.toldPartnerUnwritable = true
                self.partner?.send(.partnerWritable(false))
            }

        case (.open(_, outputDone: true), .bytes), (.open(_, outputDone: true), .end):
            return  // the partner sends nothing after `end`

        case (.open(let inputDone, outputDone: false), .end):
            self.state = .open(inputDone: inputDone, outputDone: true)
            Wire.finishOutput(context)
            self.closeIfDone(context)

        case (.open, .partnerWritable(let writable)):
            self.partnerWritable = writable
            if writable, self.readHeld {
                self.readHeld = false
                context.read()
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
        guard case .open(inputDone: false, let outputDone) = self.state else { return }
        self.state = .open(inputDone: true, outputDone: outputDone)
        self.partner?.send(.end)
        if let context { self.closeIfDone(context) }
    }

    private func closeIfDone(_ context: ChannelHandlerContext) {
        guard case .open(inputDone: true, outputDone: true) = self.state, Wire.closesWhenDone else { return }
        Wire.closeWhenDone(context)
    }
}
