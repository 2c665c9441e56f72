import Logging
import MeshConfig
import NIOCore
import NIOHPACK
import NIOHTTP2

/// Streams towards the dialing side of a tunnel. HTTP/2 lets only the client (the dialer) open
/// streams, so the accepting side asks for them: the dialer keeps one control stream open to the
/// acceptor (`:authority` `tunnelmesh.control`); on it the acceptor sends `open <id> <service>`;
/// the dialer checks access and connects to the service like for any stream, then opens a stream
/// `tunnelmesh.reverse` carrying `tm-reverse-id: <id>`, which the acceptor joins to the waiting
/// client. A refusal travels back as `refuse <id> <status>`. Both names contain a '.', which no
/// service name may, so they cannot collide with a declared service. Either side may also send a
/// `PeerNote` line on the control stream at any time.
enum ReverseStreams {
    static let controlAuthority = "tunnelmesh.control"
    static let reverseAuthority = "tunnelmesh.reverse"
    static let idHeader = "tm-reverse-id"
    /// A line longer than this is a broken or hostile peer.
    static let maxLine = PeerNote.maxLine
}

/// Splits a byte stream into newline-terminated lines, bounded in length.
struct LineBuffer {
    private var pending = ByteBuffer()

    /// Appends bytes and returns the complete lines, or nil when a line exceeds the bound.
    mutating func append(_ bytes: ByteBuffer) -> [String]? {
        var bytes = bytes
        self.pending.writeBuffer(&bytes)
        var lines: [String] = []
        while let index = self.pending.readableBytesView.firstIndex(of: UInt8(ascii: "\n")) {
            let length = index - self.pending.readerIndex
            lines.append(self.pending.readString(length: length) ?? "")
            self.pending.moveReaderIndex(forwardBy: 1)
        }
        self.pending.discardReadBytes()
        return self.pending.readableBytes > ReverseStreams.maxLine ? nil : lines
    }
}

/// The acceptor's end of the control stream: sends `open` requests and waits for the dialer's
/// reverse stream (or its refusal).
final class ReverseRequester: ChannelInboundHandler {
    typealias InboundIn = HTTP2Frame.FramePayload
    typealias OutboundOut = HTTP2Frame.FramePayload

    private var context: ChannelHandlerContext?
    private var nextID: UInt64 = 1
    private var waiting: [UInt64: (service: String, promise: EventLoopPromise<Channel>)] = [:]
    private var lines = LineBuffer()
    private let peer: String
    private let onNote: @Sendable (PeerNote) -> Void

    init(peer: String, onNote: @escaping @Sendable (PeerNote) -> Void) {
        self.peer = peer
        self.onNote = onNote
    }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
    }

    /// Asks the dialer for a stream to `service`; completes with the stream once it arrives.
    func request(service: String) -> EventLoopFuture<Channel>? {
        guard let context = self.context else { return nil }
        let id = self.nextID
        self.nextID += 1
        let promise = context.eventLoop.makePromise(of: Channel.self)
        self.waiting[id] = (service, promise)
        ControlLine.send("open \(id) \(service)\n", context: context, wrap: self.wrapOutboundOut)
        return promise.futureResult
    }

    /// Sends `note` to the dialer; false when the control stream is gone.
    func send(_ note: PeerNote) -> Bool {
        guard let context = self.context else { return false }
        return ControlLine.send(note, context: context, wrap: self.wrapOutboundOut)
    }

    /// The dialer's stream for request `id` arrived.
    func arrived(id: UInt64, stream: Channel) -> Bool {
        guard let entry = self.waiting.removeValue(forKey: id) else { return false }
        entry.promise.succeed(stream)
        return true
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard case .data(let frame) = self.unwrapInboundIn(data), case .byteBuffer(let bytes) = frame.data else { return }
        guard let lines = self.lines.append(bytes) else {
            context.close(promise: nil)
            return
        }
        for line in lines {
            if let note = PeerNote(line: line) {
                self.onNote(note)
                continue
            }
            let parts = line.split(separator: " ")
            guard parts.count == 3, parts[0] == "refuse", let id = UInt64(parts[1]), let status = Int(parts[2]),
                let entry = self.waiting.removeValue(forKey: id)
            else { continue }
            entry.promise.fail(StreamRefusedError(peer: self.peer, service: entry.service, status: status, reason: nil))
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        self.context = nil
        for (_, entry) in self.waiting { entry.promise.fail(ChannelError.ioOnClosedChannel) }
        self.waiting.removeAll()
        context.fireChannelInactive()
    }
}

/// The dialer's end of the control stream: serves `open` requests by opening reverse streams.
final class ReverseResponder: ChannelInboundHandler {
    typealias InboundIn = HTTP2Frame.FramePayload
    typealias OutboundOut = HTTP2Frame.FramePayload

    private let peer: String
    private let access: ServiceAccess
    private let counters: PeerCounters
    private let limit: StreamLimit
    private let logger: Logger
    private let open: @Sendable (HPACKHeaders, _ initializer: @escaping @Sendable (Channel) throws -> Void) -> EventLoopFuture<Channel>
    private let onNote: @Sendable (PeerNote) -> Void
    private var lines = LineBuffer()
    private var context: ChannelHandlerContext?

    init(
        peer: String, access: ServiceAccess, counters: PeerCounters, limit: StreamLimit, logger: Logger,
        onNote: @escaping @Sendable (PeerNote) -> Void,
        open: @escaping @Sendable (HPACKHeaders, _ initializer: @escaping @Sendable (Channel) throws -> Void) -> EventLoopFuture<Channel>
    ) {
        self.onNote = onNote
        self.peer = peer
        self.access = access
        self.counters = counters
        self.limit = limit
        self.logger = logger
        self.open = open
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard case .data(let frame) = self.unwrapInboundIn(data), case .byteBuffer(let bytes) = frame.data else { return }
        guard let lines = self.lines.append(bytes) else {
            self.logger.warning("control stream from \(self.peer): line too long, closing it")
            context.close(promise: nil)
            return
        }
        for line in lines {
            if let note = PeerNote(line: line) {
                self.onNote(note)
                continue
            }
            let parts = line.split(separator: " ")
            guard parts.count == 3, parts[0] == "open", let id = UInt64(parts[1]) else { continue }
            self.serve(id: id, service: String(parts[2]), context: context)
        }
    }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
    }

    func channelInactive(context: ChannelHandlerContext) {
        self.context = nil
        context.fireChannelInactive()
    }

    /// Sends `note` to the acceptor; false when the control stream is gone.
    func send(_ note: PeerNote) -> Bool {
        guard let context = self.context else { return false }
        return ControlLine.send(note, context: context, wrap: self.wrapOutboundOut)
    }

    private func serve(id: UInt64, service: String, context: ChannelHandlerContext) {
        let refusal: ConnectRequest.Refusal?
        var target: Endpoint?
        if !self.limit.admitsOneMore() {
            refusal = .tooManyStreams
        } else {
            switch self.access.target(service: service, peer: self.peer) {
            case .success(let endpoint): target = endpoint; refusal = nil
            case .failure(let reason): refusal = reason
            }
        }
        let loopBound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
        guard let target, refusal == nil else {
            var metadata: Logger.Metadata = [
                "peer": "\(self.peer)", "service": "\(service)", "status": "\(refusal!.rawValue)", "reason": "\(refusal!)",
            ]
            if refusal == .tooManyStreams { metadata["limit"] = "\(self.limit.described)" }
            self.logger.warning("stream refused", metadata: metadata)
            self.refuse(id: id, status: refusal!.rawValue, context: context)
            return
        }
        let pair = Splice.makePair(tcpLoop: context.eventLoop, streamLoop: context.eventLoop, counters: self.counters)
        let tcpSide = pair.tcp
        let streamSide = pair.stream
        let headers: HPACKHeaders = [
            ":method": "CONNECT", ":authority": ReverseStreams.reverseAuthority, ReverseStreams.idHeader: String(id),
        ]
        let open = self.open
        LocalConnector.connect(to: target, on: context.eventLoop) { channel in
            try channel.pipeline.syncOperations.addHandler(tcpSide)
        }.flatMap { tcp in
            open(headers) { stream in try stream.pipeline.syncOperations.addHandler(streamSide) }
                .map { _ in streamSide.announceWritable() }
                .flatMapErrorThrowing { error in
                    TCPReset.reset(tcp)
                    throw error
                }
        }.whenFailure { error in
            let (responder, context) = loopBound.value
            responder.logger.warning(
                "reverse stream failed", metadata: ["peer": "\(responder.peer)", "service": "\(service)", "error": "\(error)"])
            responder.refuse(id: id, status: ConnectRequest.Refusal.unreachable.rawValue, context: context)
        }
    }

    private func refuse(id: UInt64, status: Int, context: ChannelHandlerContext) {
        ControlLine.send("refuse \(id) \(status)\n", context: context, wrap: self.wrapOutboundOut)
    }
}

/// Writes one line on a control stream, from either end.
enum ControlLine {
    static func send(
        _ line: String, context: ChannelHandlerContext, wrap: (HTTP2Frame.FramePayload) -> NIOAny
    ) {
        let bytes = context.channel.allocator.buffer(string: line)
        context.writeAndFlush(wrap(.data(.init(data: .byteBuffer(bytes)))), promise: nil)
    }

    /// Sends `note`; false when it cannot be written as one line (see `PeerNote.line`).
    static func send(
        _ note: PeerNote, context: ChannelHandlerContext, wrap: (HTTP2Frame.FramePayload) -> NIOAny
    ) -> Bool {
        guard let line = note.line else { return false }
        self.send(line, context: context, wrap: wrap)
        return true
    }
}
