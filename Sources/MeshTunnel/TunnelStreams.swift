import Logging
import MeshConfig
import MeshTLS
import NIOCore
import NIOHPACK
import NIOHTTP2

/// Every stream of one tunnel, driven at the HTTP/2 frame level: one handler behind
/// `TunnelFrameHandler` (which passes frames up and takes frames to write) maps stream IDs to
/// local sockets (`StreamSocket`) and writes DATA frames itself. No per-stream channel, pipeline
/// or promise: a message costs a socket read, one frame write and, per read cycle, one flush of
/// the tunnel (one TLS record, one syscall).
///
/// What it owns, since nothing else in the pipeline does once the multiplexer is gone:
/// - Flow control. Stream credit goes back to the peer only once bytes reached the local socket
///   (`socketConsumed`), so backpressure is end to end; the connection window is topped up from
///   the frame handler's own count (`NIOHTTP2WindowUpdatedEvent`), with one grant in flight at a
///   time, so credit written but not yet sent is never granted twice (swift-nio-http2's
///   multiplexer over-credited exactly there).
/// - Opening streams. Only the dialer (HTTP/2 client) may open streams. The accepting side asks
///   for one on the control stream (see `ReverseStreams`); callers never see the difference.
/// - Serving streams the peer opens: access and stream limit, then a connect to the target; bytes
///   that arrive meanwhile are held (within the stream window) and the CONNECT answered once the
///   target is connected. Streams the peer resets before that cost no connect, and a peer that
///   resets many of them is cut off (`RapidResetGuard`).
///
/// Everything runs on the tunnel's event loop; sockets on another loop reach it through
/// `TunnelSide`, which hops.
final class TunnelStreams: ChannelInboundHandler, @unchecked Sendable {
    typealias InboundIn = HTTP2Frame
    typealias InboundOut = HTTP2Frame
    typealias OutboundOut = HTTP2Frame

    /// The verified peer, known once TLS completed.
    private struct Peer {
        let name: String
        let counters: PeerCounters
        let limit: StreamLimit
    }

    private let isDialer: Bool
    private let serving: TunnelConnection.Serving
    private let logger: Logger
    private var context: ChannelHandlerContext?
    private var peer: Peer?
    private var streams: [HTTP2StreamID: TunnelStream] = [:]
    /// The next stream ID this node opens (dialer only: client streams are odd).
    private var nextStreamID = HTTP2StreamID(1)
    private var control = ControlStream()
    /// Connection window credit written to the peer and not yet out on the socket.
    private var connectionGrantInFlight = false
    /// Streams the peer opened in this read burst, connected at its end unless reset by then.
    private var toConnect: [(TunnelStream, LocalTarget)] = []
    /// Streams whose sockets were written to in this read burst, flushed once at its end.
    private var toFlush: [TunnelStream] = []
    /// Frames were written in this read burst; the tunnel is flushed once at its end.
    private var needsFlush = false
    /// Between the first channelRead of a burst and its channelReadComplete.
    private var reading = false
    /// A flush of the tunnel waits for the end of this event-loop pass (see `flushAfterPass`).
    private var passFlushQueued = false
    /// Streams that stopped reading because the tunnel's socket could not take more.
    private var pausedByTunnel: [TunnelStream] = []
    private var rapidResets = RapidResetGuard(RapidResetGuard.early)
    /// A fresh tunnel to the same peer took over; this one lets its streams finish (see `drain`).
    private var draining = false
    /// Streams that finished, and that were cut, while draining: for the log line that closes the tunnel.
    private var drainedStreams = 0
    private var cutWhileDraining = 0
    /// The peer sent GOAWAY: as HTTP/2 client we may open no more streams here.
    private var peerWentAway = false
    /// Per-stream warnings (refusals, unreachable targets) a peer can cause at will.
    private var warnings: RateLimitedWarnings?
    private var isClosed = false

    init(isDialer: Bool, serving: TunnelConnection.Serving, logger: Logger) {
        self.isDialer = isDialer
        self.serving = serving
        self.logger = logger
    }

    // MARK: Channel events

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        self.warnings = RateLimitedWarnings(logger: self.logger, loop: context.eventLoop, subject: "stream warnings")
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        self.context = nil
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        self.reading = true
        let frame = self.unwrapInboundIn(data)
        switch frame.payload {
        case .data(let data):
            self.received(data, on: frame.streamID)
        case .headers(let headers):
            self.received(headers, on: frame.streamID)
        case .rstStream(let code):
            self.receivedReset(code, on: frame.streamID)
        case .windowUpdate(let increment) where frame.streamID != .rootStream:
            self.receivedCredit(increment, on: frame.streamID)
        case .goAway:
            self.peerWentAway = true
        default:
            break  // PING acknowledgements and connection WINDOW_UPDATE: the liveness and frame handlers' business
        }
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        self.reading = false
        if !self.toConnect.isEmpty {
            let pending = self.toConnect
            self.toConnect.removeAll(keepingCapacity: true)
            for (stream, target) in pending {
                guard case .connecting = stream.phase else { continue }  // reset before we got to it
                self.connect(stream, to: target) { self.answered($0) }
            }
        }
        if !self.toFlush.isEmpty {
            for stream in self.toFlush {
                stream.flushQueued = false
                stream.socket?.flush()
            }
            self.toFlush.removeAll(keepingCapacity: true)
        }
        if self.needsFlush {
            self.needsFlush = false
            context.flush()
        }
        if self.draining { self.closeIfDrained() }
        context.fireChannelReadComplete()
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        switch event {
        case let window as NIOHTTP2WindowUpdatedEvent:
            if window.streamID == .rootStream { self.connectionWindowChanged(inbound: window.inboundWindowSize) }
        case let closed as StreamClosedEvent:
            self.streamClosed(closed.streamID, reason: closed.reason)
        case is NIOHTTP2StreamCreatedEvent, is NIOHTTP2BulkStreamWindowChangeEvent:
            break
        case let completed as TLSHandshakeCompleted:
            self.identified(completed.peer.node)
            context.fireUserInboundEventTriggered(event)
        default:
            context.fireUserInboundEventTriggered(event)
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        // A connection error (the frame handler has sent GOAWAY) or a socket error ends the
        // tunnel, once the handlers behind us heard the cause.
        context.fireErrorCaught(error)
        context.close(promise: nil)
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        if context.channel.isWritable, !self.pausedByTunnel.isEmpty {
            let paused = self.pausedByTunnel
            self.pausedByTunnel.removeAll()
            for stream in paused {
                stream.pausedByTunnel = false
                if stream.sendCredit > 0 { stream.socket?.setReadable(true) }
            }
        }
        context.fireChannelWritabilityChanged()
    }

    func channelInactive(context: ChannelHandlerContext) {
        self.isClosed = true
        let error = PeerUnavailableError(peer: self.peer?.name ?? "peer")
        let all = Array(self.streams.values) + self.control.takeAllRequests()
        self.streams.removeAll()
        for stream in all { self.end(stream, error: error) }
        context.fireChannelInactive()
    }

    // MARK: Opening streams (the API, via `TunnelConnection`)

    /// Opens `stream` (whose socket, if any, is already in its channel's pipeline). The socket
    /// starts reading once the stream can carry its bytes; the opener hears the outcome through
    /// `stream.onOpened`.
    func open(_ stream: TunnelStream) {
        // After the peer's GOAWAY, HTTP/2 forbids a client new streams: refuse here rather than
        // let NIO fail the whole tunnel.
        guard self.context != nil, !self.isClosed, self.peer != nil, !(self.isDialer && self.peerWentAway) else {
            return self.end(stream, error: PeerUnavailableError(peer: self.peer?.name ?? "peer"))
        }
        self.count(stream)
        if self.isDialer {
            self.start(stream, headers: ConnectRequest.headers(service: stream.service))
        } else if let line = self.control.request(stream) {
            self.writeControl(line)
            self.flushSoon()
        } else {
            // The dialer opens its control stream right after the handshake; a request made in
            // between waits for it, but not for ever.
            self.context?.eventLoop.assumeIsolated().scheduleTask(in: ReverseStreams.controlWait) {
                if case .requested(let id, _) = stream.phase, self.control.cancel(id) {
                    self.end(stream, error: PeerUnavailableError(peer: self.peer?.name ?? "peer"))
                }
            }
        }
    }

    /// Gives up on a stream (a one-shot whose service never closed it): reset it.
    func cancel(_ stream: TunnelStream) {
        if let id = stream.id, self.streams[id] === stream {
            self.streams.removeValue(forKey: id)
            self.write(HTTP2Frame(streamID: id, payload: .rstStream(.cancel)))
            self.flushSoon()
        }
        self.end(stream, error: StreamResetError(peer: self.peer?.name ?? "peer", service: stream.service, code: .cancel))
    }

    /// Sends `note` on the control stream; false when it is not open.
    func send(_ note: PeerNote) -> Bool {
        guard let line = note.line, self.control.isOpen else { return false }
        self.writeControl(line)
        self.flushSoon()
        return true
    }

    // MARK: Draining (certificate rotation, see `PeerLink`)

    /// A fresh tunnel to the same peer took over: new streams go there, and this one closes once
    /// the streams it carries have finished, none reset. The dialer says so with GOAWAY (as HTTP/2
    /// client it still answers the reverse-stream requests the acceptor made before it switched).
    /// The acceptor closes the tunnel once it heard that GOAWAY and nothing is left: no stream and
    /// no request of its own still waiting for the dialer. Both directions thus end clean; its
    /// closing GOAWAY is the last frame.
    func drain() {
        guard !self.draining, !self.isClosed else { return }
        self.draining = true
        if self.isDialer {
            self.write(HTTP2Frame(streamID: .rootStream, payload: .goAway(lastStreamID: .rootStream, errorCode: .noError, opaqueData: nil)))
            self.flushNow()
        }
        self.closeIfDrained()
    }

    /// Streams still carried, the control stream aside.
    var carriedStreams: Int {
        self.streams.count - (self.control.id.map { self.streams[$0] != nil ? 1 : 0 } ?? 0)
    }

    /// Checks after the current write or event is done, never from inside one.
    private func closeSoonIfDrained() {
        guard self.draining, !self.reading, let context else { return }  // a read burst checks at its end
        context.eventLoop.assumeIsolated().execute { self.closeIfDrained() }
    }

    private func closeIfDrained() {
        guard self.draining, !self.isDialer, self.peerWentAway, !self.isClosed, let context,
            self.carriedStreams == 0, !self.control.hasWaitingRequests
        else { return }
        let message =
            "previous tunnel to \(self.peer?.name ?? "peer") drained: \(self.drainedStreams) streams finished on it, "
            + "\(self.cutWhileDraining) reset by a client or the peer meanwhile; closing it with GOAWAY"
        self.logger.info("\(message)")
        let goAway = HTTP2Frame(streamID: .rootStream, payload: .goAway(lastStreamID: .maxID, errorCode: .noError, opaqueData: nil))
        context.writeAndFlush(self.wrapOutboundOut(goAway), promise: nil)
        context.close(promise: nil)
    }

    /// The certificates that authenticated this tunnel ran out (`error` says which and why): close
    /// it now, resetting whatever streams are still on it, and let the owner hear `error`.
    func expire(_ error: Error) {
        guard let context, !self.isClosed else { return }
        let carried = self.carriedStreams
        self.logger.warning(
            "closing the tunnel to \(self.peer?.name ?? "peer"): \(error); \(carried) streams on it are reset"
        )
        context.fireErrorCaught(error)
        context.close(promise: nil)
    }

    /// Dialer: puts a stream on the wire with a CONNECT. Bytes may follow at once.
    private func start(_ stream: TunnelStream, headers: HPACKHeaders) {
        let held = stream.takeHeld()
        let id = self.nextStreamID
        self.nextStreamID = HTTP2StreamID(Int(id) + 2)
        stream.id = id
        stream.phase = .opening
        self.streams[id] = stream
        self.write(HTTP2Frame(streamID: id, payload: .headers(.init(headers: headers))))
        self.sendHeld(stream, held: held)
        self.flushSoon()
        stream.socket?.setReadable(stream.sendCredit > 0)
    }

    // MARK: Frames from the peer

    private func received(_ data: HTTP2Frame.FramePayload.Data, on id: HTTP2StreamID) {
        guard let stream = self.streams[id], case .byteBuffer(let bytes) = data.data else { return }
        let length = bytes.readableBytes
        if length > 0 {
            if id == self.control.id {
                self.controlBytes(bytes, stream: stream)
            } else {
                self.peer?.counters.bytesReceived.wrappingIncrement(by: UInt64(length), ordering: .relaxed)
                switch stream.phase {
                case .connecting(var held):
                    stream.phase = .finished  // drop the array's reference before appending: no copy
                    held.append(bytes)
                    stream.phase = .connecting(held: held)
                case .opening, .open:
                    if let socket = stream.socket {
                        socket.deliver(bytes, credit: length)
                        self.queueFlush(stream, socket)
                    } else {
                        self.socketConsumed(stream, bytes: length)  // a one-shot reads nothing
                    }
                case .created, .requested, .finished:
                    break
                }
            }
        }
        if data.endStream { self.peerEnded(stream) }
    }

    private func received(_ headers: HTTP2Frame.FramePayload.Headers, on id: HTTP2StreamID) {
        if let stream = self.streams[id] {
            if case .opening = stream.phase { self.answer(stream, headers: headers.headers) }
            if headers.endStream { self.peerEnded(stream) }
            return
        }
        guard !self.isDialer else { return }  // a server opens no streams; the frame handler enforces it
        self.serve(headers.headers, endStream: headers.endStream, on: id)
    }

    private func receivedReset(_ code: HTTP2ErrorCode, on id: HTTP2StreamID) {
        guard let stream = self.streams.removeValue(forKey: id) else { return }
        if case .connecting = stream.phase, !self.rapidResets.allow(now: .now()) {
            return self.calm(
                reason: "\(self.rapidResets.limit) streams reset before they were answered within \(self.rapidResets.window.text)"
            )
        }
        self.end(stream, error: StreamResetError(peer: self.peer?.name ?? "peer", service: stream.service, code: code))
    }

    private func receivedCredit(_ increment: Int, on id: HTTP2StreamID) {
        guard let stream = self.streams[id] else { return }
        let wasBlocked = stream.sendCredit <= 0
        stream.sendCredit += increment
        if wasBlocked, stream.sendCredit > 0, !stream.pausedByTunnel { stream.socket?.setReadable(true) }
    }

    private func peerEnded(_ stream: TunnelStream) {
        guard !stream.peerEnded else { return }
        stream.peerEnded = true
        switch stream.phase {
        case .opening, .open: stream.socket?.finishOutput()
        case .created, .connecting, .requested, .finished: break  // `answered` finishes a connecting stream's output
        }
    }

    /// The peer's answer to our CONNECT.
    private func answer(_ stream: TunnelStream, headers: HPACKHeaders) {
        let status = headers.first(name: ":status").flatMap { Int($0) } ?? 0
        if status == 200 {
            stream.phase = .open
            return stream.reportOpened(.success(()))
        }
        let refused = StreamRefusedError(
            peer: self.peer?.name ?? "peer",
            service: stream.service,
            status: status,
            reason: headers.first(name: "tm-reason")
        )
        if let id = stream.id, !stream.localEnded {
            // End our side cleanly (the refusal ended theirs): no RST_STREAM, which the peer's
            // reset guards would count.
            stream.localEnded = true
            self.write(HTTP2Frame(streamID: id, payload: .data(.init(data: .byteBuffer(ByteBuffer()), endStream: true))))
            self.flushSoon()
        }
        self.end(stream, error: refused, detachSocket: true)
    }

    /// Once both sides ended (or either reset) the frame handler closes the stream.
    private func streamClosed(_ id: HTTP2StreamID, reason: HTTP2ErrorCode?) {
        guard let stream = self.streams.removeValue(forKey: id) else { return }
        if id == self.control.id { self.control.closed() }
        if reason == nil, stream.localEnded, stream.peerEnded {
            // Clean: the socket finishes by itself once its output is out.
            self.uncount(stream)
            stream.oneShot?.succeed(())
            stream.oneShot = nil
            stream.phase = .finished
            if self.draining {
                self.drainedStreams += 1
                self.closeSoonIfDrained()
            }
            return
        }
        self.end(stream, error: StreamResetError(peer: self.peer?.name ?? "peer", service: stream.service, code: reason ?? .cancel))
    }

    // MARK: Serving streams the peer opens

    private func serve(_ headers: HPACKHeaders, endStream: Bool, on id: HTTP2StreamID) {
        guard let peer = self.peer else { return self.refuse(id, .unreachable, service: "?") }
        let service: String
        switch ConnectRequest.service(from: headers) {
        case .failure(let refusal): return self.refuse(id, refusal, service: "?")
        case .success(let name): service = name
        }
        switch service {
        case ReverseStreams.controlAuthority:
            return self.acceptControlStream(on: id)
        case ReverseStreams.reverseAuthority:
            return self.acceptReverseStream(headers, on: id)
        default:
            break
        }
        guard peer.limit.admitsOneMore() else { return self.refuse(id, .tooManyStreams, service: service) }
        let target: LocalTarget
        switch self.serving.access().target(service: service, peer: peer.name) {
        case .failure(let refusal): return self.refuse(id, refusal, service: service)
        case .success(let endpoint): target = endpoint
        }
        let stream = TunnelStream(service: service, phase: .connecting(held: []), sendCredit: TunnelTuning.streamWindow)
        stream.id = id
        self.streams[id] = stream
        self.count(stream)
        if endStream { stream.peerEnded = true }
        self.toConnect.append((stream, target))
    }

    /// Connects `stream`'s socket to `target` on the tunnel's loop; `then` runs once the socket is
    /// in place (the stream may have been reset meanwhile: `then` checks).
    private func connect(_ stream: TunnelStream, to target: LocalTarget, then: @escaping @Sendable (TunnelStream) -> Void) {
        guard let context else { return }
        let loop = context.eventLoop
        let socket = StreamSocket(loop: loop, tunnel: TunnelSide(streams: self, stream: stream, loop: loop))
        if target.preconnect > 0, self.serving.spares(loop)?.take(target, handing: socket) != nil {
            stream.socket = socket
            return then(stream)
        }
        LocalConnector.connect(to: target.endpoint, on: loop) { channel in
            try channel.pipeline.syncOperations.addHandler(socket)
            stream.socket = socket
        }.whenComplete { result in
            switch result {
            case .success:
                then(stream)
            case .failure(let error):
                self.warnings?.warn(
                    kind: "unreachable",
                    "service target unreachable",
                    metadata: [
                        "peer": "\(self.peer?.name ?? "?")", "service": "\(stream.service)", "target": "\(target.endpoint)",
                        "error": "\(error)",
                    ]
                )
                self.targetUnreachable(stream)
            }
        }
    }

    /// A served stream's target is connected: answer, hand over what the peer already sent, carry.
    private func answered(_ stream: TunnelStream) {
        guard case .connecting(let held) = stream.phase, let id = stream.id, let socket = stream.socket, !self.isClosed
        else {
            stream.socket?.abort()  // reset while we connected: nobody wants this connection
            return
        }
        stream.phase = .open
        self.write(HTTP2Frame(streamID: id, payload: .headers(.init(headers: ConnectRequest.response(status: 200)))))
        self.flushNow()
        for bytes in held { socket.deliver(bytes, credit: bytes.readableBytes) }
        if stream.peerEnded { socket.finishOutput() } else { socket.flush() }
        socket.setReadable(stream.sendCredit > 0)
    }

    private func targetUnreachable(_ stream: TunnelStream) {
        switch stream.phase {
        case .connecting:
            if let id = stream.id {
                self.streams.removeValue(forKey: id)
                self.uncount(stream)
                stream.phase = .finished
                self.refuse(id, .unreachable, service: stream.service)
                self.flushNow()
            } else {
                // A reverse stream the dialer was asked for: refuse it on the control stream.
                self.end(stream, error: ConnectRequest.Refusal.unreachable)
            }
        case .created, .requested, .opening, .open, .finished:
            break
        }
    }

    /// Answers a CONNECT with a refusal and ends our side; the opener ends its own.
    private func refuse(_ id: HTTP2StreamID, _ refusal: ConnectRequest.Refusal, service: String) {
        if refusal != .unreachable {
            var metadata: Logger.Metadata = [
                "peer": "\(self.peer?.name ?? "?")", "service": "\(service)", "status": "\(refusal.rawValue)",
                "reason": "\(refusal)",
            ]
            if refusal == .tooManyStreams, let limit = self.peer?.limit { metadata["limit"] = "\(limit.described)" }
            self.warnings?.warn(kind: "\(refusal)", "stream refused", metadata: metadata)
        }
        var headers = ConnectRequest.response(status: refusal.rawValue)
        headers.add(name: "tm-reason", value: refusal.description)
        self.write(HTTP2Frame(streamID: id, payload: .headers(.init(headers: headers, endStream: true))))
        self.flushSoon()
    }

    // MARK: The control stream and reverse streams (see `ReverseStreams`)

    /// Dialer: opens the control stream as soon as the peer is verified.
    private func openControlStream() {
        let stream = TunnelStream(service: ReverseStreams.controlAuthority, phase: .opening, sendCredit: TunnelTuning.streamWindow)
        stream.onOpened = { [logger = self.logger, peer = self.peer?.name ?? "peer"] result in
            // A tunnel that closes ends its control stream too; that needs no second word.
            if case .failure(let error) = result, !(error is PeerUnavailableError) {
                logger.warning("control stream to \(peer) failed: \(error); streams from \(peer) to this node will be refused")
            }
        }
        self.start(stream, headers: ConnectRequest.headers(service: ReverseStreams.controlAuthority))
        self.control.opened(stream.id!)
    }

    /// Acceptor: the dialer's control stream arrived; send the requests that waited for it.
    private func acceptControlStream(on id: HTTP2StreamID) {
        let stream = TunnelStream(service: ReverseStreams.controlAuthority, phase: .open, sendCredit: TunnelTuning.streamWindow)
        stream.id = id
        self.streams[id] = stream
        self.write(HTTP2Frame(streamID: id, payload: .headers(.init(headers: ConnectRequest.response(status: 200)))))
        for line in self.control.opened(id) { self.writeControl(line) }
        self.flushSoon()
    }

    /// Acceptor: the dialer opened the stream we asked for: join it to the waiting socket.
    private func acceptReverseStream(_ headers: HPACKHeaders, on id: HTTP2StreamID) {
        self.write(HTTP2Frame(streamID: id, payload: .headers(.init(headers: ConnectRequest.response(status: 200)))))
        self.flushSoon()
        guard let reverseID = headers.first(name: ReverseStreams.idHeader).flatMap(UInt64.init),
            let stream = self.control.arrived(reverseID)
        else {
            // Nobody waits for it (the client left): end it cleanly.
            self.write(HTTP2Frame(streamID: id, payload: .data(.init(data: .byteBuffer(ByteBuffer()), endStream: true))))
            return
        }
        let held = stream.takeHeld()
        stream.id = id
        stream.phase = .open
        self.streams[id] = stream
        self.sendHeld(stream, held: held)
        stream.socket?.setReadable(stream.sendCredit > 0 && !stream.localEnded)
        stream.reportOpened(.success(()))
    }

    private func controlBytes(_ bytes: ByteBuffer, stream: TunnelStream) {
        self.socketConsumed(stream, bytes: bytes.readableBytes)
        guard let lines = self.control.lines.append(bytes) else {
            return self.calm(reason: "a control stream line longer than \(ReverseStreams.maxLine) bytes")
        }
        for line in lines {
            if let note = PeerNote(line: line) {
                if let peer = self.peer?.name { self.serving.note(peer, note) }
                continue
            }
            let parts = line.split(separator: " ")
            if self.isDialer, parts.count == 3, parts[0] == "open", let id = UInt64(parts[1]) {
                self.serveReverse(id: id, service: String(parts[2]))
            } else if !self.isDialer, parts.count == 3, parts[0] == "refuse", let id = UInt64(parts[1]),
                let status = Int(parts[2]), let stream = self.control.arrived(id)
            {
                self.end(
                    stream,
                    error: StreamRefusedError(peer: self.peer?.name ?? "peer", service: stream.service, status: status, reason: nil),
                    detachSocket: true
                )
            }
        }
    }

    /// Dialer: the acceptor asks for a stream to one of our services.
    private func serveReverse(id: UInt64, service: String) {
        guard let peer = self.peer else { return }
        let refusal: ConnectRequest.Refusal
        if !peer.limit.admitsOneMore() {
            refusal = .tooManyStreams
        } else {
            switch self.serving.access().target(service: service, peer: peer.name) {
            case .success(let target):
                let stream = TunnelStream(service: service, phase: .connecting(held: []), sendCredit: TunnelTuning.streamWindow)
                stream.reverseID = id
                self.count(stream)
                return self.connect(stream, to: target) { stream in
                    guard case .connecting = stream.phase, !self.isClosed, !self.peerWentAway else {
                        return stream.socket?.abort() ?? ()
                    }
                    self.start(stream, headers: ReverseStreams.headers(id: id))
                }
            case .failure(let reason):
                refusal = reason
            }
        }
        var metadata: Logger.Metadata = [
            "peer": "\(peer.name)", "service": "\(service)", "status": "\(refusal.rawValue)", "reason": "\(refusal)",
        ]
        if refusal == .tooManyStreams { metadata["limit"] = "\(peer.limit.described)" }
        self.warnings?.warn(kind: "\(refusal)", "stream refused", metadata: metadata)
        self.writeControl(ReverseStreams.refuseLine(id: id, status: refusal.rawValue))
        self.flushSoon()
    }

    private func writeControl(_ line: String) {
        guard let id = self.control.id, let context else { return }
        let bytes = context.channel.allocator.buffer(string: line)
        self.write(HTTP2Frame(streamID: id, payload: .data(.init(data: .byteBuffer(bytes)))))
    }

    // MARK: Calls from sockets (via `TunnelSide`)

    func socketRead(_ stream: TunnelStream, _ bytes: ByteBuffer) {
        switch stream.phase {
        case .created(var held):
            stream.phase = .finished  // drop the array's reference before appending: no copy
            held.append(bytes)
            stream.phase = .created(held: held)
        case .requested(let id, var held):
            stream.phase = .finished
            held.append(bytes)
            stream.phase = .requested(reverseID: id, held: held)
        case .opening, .open:
            guard let id = stream.id, !stream.localEnded, let context else { return }
            let length = bytes.readableBytes
            self.write(HTTP2Frame(streamID: id, payload: .data(.init(data: .byteBuffer(bytes)))))
            self.peer?.counters.bytesSent.wrappingIncrement(by: UInt64(length), ordering: .relaxed)
            stream.sendCredit -= length
            if stream.sendCredit <= 0 {
                stream.socket?.setReadable(false)
            } else if !context.channel.isWritable, !stream.pausedByTunnel {
                stream.pausedByTunnel = true
                self.pausedByTunnel.append(stream)
                stream.socket?.setReadable(false)
            }
        case .connecting, .finished:
            break
        }
    }

    func socketReadComplete(_ stream: TunnelStream) {
        guard stream.id != nil else { return }
        self.flushAfterPass()
    }

    func socketInputEnded(_ stream: TunnelStream) {
        guard !stream.localEnded else { return }
        stream.localEnded = true
        switch stream.phase {
        case .opening, .open:
            guard let id = stream.id else { return }
            self.write(HTTP2Frame(streamID: id, payload: .data(.init(data: .byteBuffer(ByteBuffer()), endStream: true))))
            self.flushSoon()
        case .created, .requested, .connecting, .finished:
            break  // sent with the held bytes once the stream is on the wire
        }
    }

    /// The local socket took `bytes` of what the peer sent: give them back as stream window,
    /// in batches (a WINDOW_UPDATE per quarter window, not per message).
    func socketConsumed(_ stream: TunnelStream, bytes: Int) {
        guard let id = stream.id, !stream.peerEnded, self.streams[id] === stream else { return }
        stream.ungranted += bytes
        guard stream.ungranted >= TunnelTuning.streamCreditBatch else { return }
        let increment = stream.ungranted
        stream.ungranted = 0
        self.write(HTTP2Frame(streamID: id, payload: .windowUpdate(windowSizeIncrement: increment)))
        self.flushSoon()
    }

    /// The local socket closed. Unless both directions had finished, the stream is cut: reset it.
    func socketClosed(_ stream: TunnelStream, finished: Bool) {
        stream.socket = nil
        if finished { return }
        switch stream.phase {
        case .finished:
            return
        case .created:
            break
        case .requested(let id, _):
            _ = self.control.cancel(id)
        case .opening, .open, .connecting:
            if let id = stream.id, self.streams.removeValue(forKey: id) != nil {
                self.write(HTTP2Frame(streamID: id, payload: .rstStream(.cancel)))
                self.flushSoon()
            }
        }
        self.end(stream, error: ChannelError.eof)
    }

    // MARK: Helpers

    /// Ends a stream that will carry nothing more: the socket is reset (or, for an opener still
    /// waiting to hear, handed back), the opener and a one-shot hear `error`, and the peer's
    /// stream count drops. Not for clean ends (see `streamClosed`).
    private func end(_ stream: TunnelStream, error: Error, detachSocket: Bool = false) {
        let wasOpen: Bool
        switch stream.phase {
        case .finished: wasOpen = false
        case .requested(let id, _):
            wasOpen = true
            _ = self.control.cancel(id)
        case .created, .opening, .connecting, .open:
            wasOpen = true
        }
        stream.phase = .finished
        self.uncount(stream)
        if self.draining, wasOpen, stream.service != ReverseStreams.controlAuthority { self.cutWhileDraining += 1 }
        self.closeSoonIfDrained()
        if wasOpen, stream.reverseID != nil, stream.id == nil, self.isDialer, !self.isClosed {
            // A reverse stream we were asked for never got on the wire: tell the acceptor.
            let status = (error as? ConnectRequest.Refusal)?.rawValue ?? ConnectRequest.Refusal.unreachable.rawValue
            self.writeControl(ReverseStreams.refuseLine(id: stream.reverseID!, status: status))
            self.flushSoon()
        }
        if let socket = stream.socket {
            stream.socket = nil
            if detachSocket, stream.onOpened != nil { socket.detach() } else { socket.abort() }
        }
        stream.reportOpened(.failure(error))
        stream.oneShot?.fail(error)
        stream.oneShot = nil
    }

    private func identified(_ name: String) {
        guard let state = self.serving.peerState(name) else { return }
        self.peer = Peer(name: name, counters: state.counters, limit: state.limit)
        if self.isDialer { self.openControlStream() }
    }

    private func count(_ stream: TunnelStream) {
        guard !stream.counted, let counters = self.peer?.counters, stream.service != ReverseStreams.controlAuthority else { return }
        stream.counted = true
        counters.streamOpened()
    }

    private func uncount(_ stream: TunnelStream) {
        guard stream.counted else { return }
        stream.counted = false
        self.peer?.counters.streamClosed()
    }

    /// Writes held bytes (and a held end) of a stream that just got on the wire.
    private func sendHeld(_ stream: TunnelStream, held: [ByteBuffer]) {
        guard let id = stream.id else { return }
        for bytes in held {
            stream.sendCredit -= bytes.readableBytes
            self.peer?.counters.bytesSent.wrappingIncrement(by: UInt64(bytes.readableBytes), ordering: .relaxed)
            self.write(HTTP2Frame(streamID: id, payload: .data(.init(data: .byteBuffer(bytes)))))
        }
        if stream.localEnded {
            self.write(HTTP2Frame(streamID: id, payload: .data(.init(data: .byteBuffer(ByteBuffer()), endStream: true))))
        }
    }

    /// Tops the connection window up from NIO's own count of it, one grant at a time: a grant still
    /// queued behind other frames is not yet in that count, and must not be granted again.
    private func connectionWindowChanged(inbound: Int?) {
        guard let inbound, !self.connectionGrantInFlight, inbound < TunnelTuning.connectionWindow / 2, let context else {
            return
        }
        self.connectionGrantInFlight = true
        let written = context.eventLoop.makePromise(of: Void.self)
        written.futureResult.whenComplete { _ in self.connectionGrantInFlight = false }
        let frame = HTTP2Frame(streamID: .rootStream, payload: .windowUpdate(windowSizeIncrement: TunnelTuning.connectionWindow - inbound))
        context.write(self.wrapOutboundOut(frame), promise: written)
        self.flushSoon()
    }

    /// A peer that floods us: GOAWAY with ENHANCE_YOUR_CALM, say why, close the tunnel.
    private func calm(reason: String) {
        guard let context, !self.isClosed else { return }
        self.logger.error("closing the tunnel to \(self.peer?.name ?? "peer"): \(reason) (GOAWAY ENHANCE_YOUR_CALM)")
        let last = self.streams.keys.max() ?? .rootStream
        let goAway = HTTP2Frame(streamID: .rootStream, payload: .goAway(lastStreamID: last, errorCode: .enhanceYourCalm, opaqueData: nil))
        context.writeAndFlush(self.wrapOutboundOut(goAway), promise: nil)
        context.close(promise: nil)
    }

    private func write(_ frame: HTTP2Frame) {
        self.context?.write(self.wrapOutboundOut(frame), promise: nil)
    }

    /// Flushes at the end of the current read burst, or now when there is none.
    private func flushSoon() {
        if self.reading { self.needsFlush = true } else { self.flushNow() }
    }

    /// Flushes once the event loop has handled every socket that was ready with this one: NIO runs
    /// tasks after a pass's I/O events, so several streams' messages read in one pass leave in one
    /// TLS record write and one syscall instead of one each.
    private func flushAfterPass() {
        if self.reading {
            self.needsFlush = true
            return
        }
        guard !self.passFlushQueued, let context else { return }
        self.passFlushQueued = true
        context.eventLoop.execute {
            self.passFlushQueued = false
            self.flushNow()
        }
    }

    private func flushNow() {
        self.needsFlush = false
        self.context?.flush()
    }

    private func queueFlush(_ stream: TunnelStream, _ socket: StreamSocket) {
        if self.reading {
            guard !stream.flushQueued else { return }
            stream.flushQueued = true
            self.toFlush.append(stream)
        } else {
            socket.flush()
        }
    }
}
