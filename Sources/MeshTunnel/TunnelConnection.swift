import Foundation
import Logging
import MeshConfig
import MeshTLS
import NIOCore
import NIOHPACK
import NIOHTTP2

/// One TCP connection to a peer carrying TLS 1.3 and HTTP/2: the tunnel. Built the same way on the
/// dialing and the accepting side; only the HTTP/2 mode and the TLS peer policy differ.
final class TunnelConnection: @unchecked Sendable {
    /// What the owner of a tunnel is told; each callback runs on the tunnel's event loop.
    struct Events: Sendable {
        /// TLS finished and the peer's certificate passed every check.
        var up: @Sendable (TunnelConnection, TLSHandshakeCompleted) -> Void
        /// The tunnel closed; the error says why (nil for a clean close).
        var closed: @Sendable (TunnelConnection, Error?) -> Void
        /// A round trip measured by the liveness PINGs.
        var rtt: @Sendable (TunnelConnection, TimeAmount) -> Void
    }

    /// Everything a tunnel needs to serve the peer's streams.
    struct Serving: Sendable {
        var access: @Sendable () -> ServiceAccess
        /// The peer's counters and stream admission, found once the peer is known.
        var peerState: @Sendable (String) -> (counters: PeerCounters, limit: StreamLimit)?
        /// A note arrived from the (verified) peer on the control stream.
        var note: @Sendable (_ peer: String, PeerNote) -> Void
    }

    let channel: Channel
    private let multiplexer: NIOHTTP2Handler.StreamMultiplexer
    private let liveness: NIOLoopBound<(LivenessHandler, ChannelHandlerContext)>
    /// The verified peer name; set once, on the event loop, when the handshake completes.
    private let identity: NIOLoopBoundBox<String?>
    /// Accepting side: the control stream's end that asks the dialer for reverse streams.
    fileprivate let requester: NIOLoopBoundBox<ReverseRequester?>
    /// Dialing side: the control stream's end that serves the acceptor's requests.
    fileprivate let responder: NIOLoopBoundBox<ReverseResponder?>
    fileprivate let mode: NIOHTTP2Handler.ParserMode
    fileprivate let serving: Serving
    fileprivate let logger: Logger

    /// Adds TLS, HTTP/2, liveness and the observer to a fresh channel. Call on the channel's loop.
    static func configure(
        channel: Channel,
        mode: NIOHTTP2Handler.ParserMode,
        tls: TLSContext,
        policy: PeerPolicy,
        settings: TunnelSettings,
        serving: Serving,
        events: Events,
        logger: Logger
    ) throws -> TunnelConnection {
        let sync = channel.pipeline.syncOperations
        try channel.syncOptions?.setOption(.writeBufferWaterMark, value: TunnelTuning.tunnelWriteWaterMark)
        try sync.addHandler(OpenSSLHandler(
            context: tls, policy: policy, handshakeTimeout: TimeAmount(settings.handshakeTimeout)))
        let identity = NIOLoopBoundBox<String?>(nil, eventLoop: channel.eventLoop)
        let requester = NIOLoopBoundBox<ReverseRequester?>(nil, eventLoop: channel.eventLoop)
        let multiplexer = try sync.configureHTTP2Pipeline(
            mode: mode,
            connectionConfiguration: TunnelTuning.connection(maxStreams: settings.maxStreamsPerPeer),
            streamConfiguration: TunnelTuning.stream
        ) { stream in
            stream.eventLoop.makeCompletedFuture {
                guard let peer = identity.value, let state = serving.peerState(peer) else {
                    throw ChannelError.ioOnClosedChannel
                }
                try stream.pipeline.syncOperations.addHandler(ServiceRequestHandler(
                    peer: peer, access: serving.access(), counters: state.counters, logger: logger, limit: state.limit,
                    requester: requester, onNote: { serving.note(peer, $0) }))
            }
        }
        // Weak: the connection holds the liveness handler, whose callback this is; a strong
        // reference made a cycle that kept every closed tunnel (its channel, TLS and HTTP/2
        // state: ~300 KiB) alive forever, one per reconnect.
        let livenessBox = NIOLoopBoundBox<WeakConnection>(WeakConnection(), eventLoop: channel.eventLoop)
        let liveness = LivenessHandler(
            interval: TimeAmount(settings.pingInterval), deadAfter: settings.deadAfter
        ) { rtt in
            if let connection = livenessBox.value.connection { events.rtt(connection, rtt) }
        }
        try sync.addHandler(liveness)
        let livenessContext = try sync.context(handler: liveness)
        let connection = TunnelConnection(
            channel: channel, multiplexer: multiplexer,
            liveness: NIOLoopBound((liveness, livenessContext), eventLoop: channel.eventLoop),
            identity: identity, requester: requester,
            responder: NIOLoopBoundBox(nil, eventLoop: channel.eventLoop), mode: mode, serving: serving, logger: logger)
        livenessBox.value = WeakConnection(connection: connection)
        try sync.addHandler(TunnelObserver(connection: connection, events: events))
        return connection
    }

    /// A reference to a connection that does not keep it alive.
    private struct WeakConnection {
        weak var connection: TunnelConnection?
    }

    private init(
        channel: Channel, multiplexer: NIOHTTP2Handler.StreamMultiplexer,
        liveness: NIOLoopBound<(LivenessHandler, ChannelHandlerContext)>, identity: NIOLoopBoundBox<String?>,
        requester: NIOLoopBoundBox<ReverseRequester?>, responder: NIOLoopBoundBox<ReverseResponder?>,
        mode: NIOHTTP2Handler.ParserMode, serving: Serving, logger: Logger
    ) {
        self.responder = responder
        self.channel = channel
        self.multiplexer = multiplexer
        self.liveness = liveness
        self.identity = identity
        self.requester = requester
        self.mode = mode
        self.serving = serving
        self.logger = logger
    }

    /// Whether this node dialed the tunnel (and so may open streams on it directly).
    var isDialer: Bool { self.mode == .client }

    /// Accepting side: asks the dialer to open a stream to `service` (see `ReverseStreams`). The
    /// dialer opens its control stream right after the handshake; a request made in between waits
    /// for it (up to a second) rather than failing.
    func requestReverseStream(service: String) -> EventLoopFuture<Channel> {
        self.channel.eventLoop.flatSubmit {
            self.requestReverseStream(service: service, attemptsLeft: 100)
        }
    }

    private func requestReverseStream(service: String, attemptsLeft: Int) -> EventLoopFuture<Channel> {
        let loop = self.channel.eventLoop
        if let requester = self.requester.value, let future = requester.request(service: service) {
            return future
        }
        guard attemptsLeft > 0, self.channel.isActive else {
            return loop.makeFailedFuture(PeerUnavailableError(peer: self.peerName ?? "peer"))
        }
        return loop.flatScheduleTask(in: .milliseconds(10)) {
            self.requestReverseStream(service: service, attemptsLeft: attemptsLeft - 1)
        }.futureResult
    }

    /// Dialing side: opens the control stream on which the acceptor asks for reverse streams.
    fileprivate func openControlStream(peer: String) {
        guard let state = self.serving.peerState(peer) else { return }
        let access = self.serving.access()
        let logger = self.logger
        let loop = self.channel.eventLoop
        let serving = self.serving
        let responder = ReverseResponder(
            peer: peer, access: access, counters: state.counters, limit: state.limit, logger: logger,
            onNote: { serving.note(peer, $0) }
        ) { [weak self] headers, initializer in
            guard let self else { return loop.makeFailedFuture(ChannelError.ioOnClosedChannel) }
            return self.openStream(headers: headers, peer: peer, onAccepted: {}, initializer: initializer)
        }
        self.responder.value = responder
        let boxed = NIOLoopBound(responder, eventLoop: self.channel.eventLoop)
        self.openStream(
            headers: ConnectRequest.headers(service: ReverseStreams.controlAuthority), peer: peer, onAccepted: {},
            initializer: { stream in try stream.pipeline.syncOperations.addHandler(boxed.value) }
        ).whenFailure { error in
            logger.warning("control stream to \(peer) failed: \(error); streams from \(peer) to this node will be refused")
        }
    }

    /// The verified peer name, once TLS completed. Call on the event loop.
    var peerName: String? { self.identity.value }

    /// Records the verified peer. Called by the observer on the event loop.
    fileprivate func identified(as peer: String) {
        self.identity.value = peer
    }

    /// Opens a CONNECT stream to `service` on the peer. The future completes once the peer accepted
    /// it; `initializer` adds the handlers that run behind the `StreamOpener`.
    func openStream(
        headers: HPACKHeaders,
        peer: String,
        onAccepted: @escaping @Sendable () -> Void,
        initializer: @escaping @Sendable (Channel) throws -> Void
    ) -> EventLoopFuture<Channel> {
        // The multiplexer must be used on the tunnel's loop; a balancer session may call from another.
        guard self.channel.eventLoop.inEventLoop else {
            return self.channel.eventLoop.flatSubmit {
                self.openStream(headers: headers, peer: peer, onAccepted: onAccepted, initializer: initializer)
            }
        }
        let accepted = self.channel.eventLoop.makePromise(of: Void.self)
        let created = self.multiplexer.createStreamChannel { stream in
            stream.eventLoop.makeCompletedFuture {
                try stream.pipeline.syncOperations.addHandler(
                    StreamOpener(headers: headers, peer: peer, promise: accepted, onAccepted: onAccepted))
                try initializer(stream)
            }
        }
        created.whenFailure { accepted.fail($0) }
        return created.and(accepted.futureResult).map { $0.0 }
    }

    /// Sends `note` to the peer on the control stream. Dropped when the control stream is not open
    /// (yet): notes are state that their sender repeats, not messages that must arrive.
    func send(_ note: PeerNote) {
        self.channel.eventLoop.execute {
            _ = self.isDialer ? self.responder.value?.send(note) : self.requester.value?.send(note)
        }
    }

    /// Sends one PING now and reports its round trip.
    func ping() -> EventLoopFuture<TimeAmount> {
        self.channel.eventLoop.flatSubmit {
            let (handler, context) = self.liveness.value
            return handler.ping(context: context)
        }
    }

    /// GOAWAY: the peer opens no new streams on this tunnel; open ones go on.
    func sendGoAway() {
        let frame = HTTP2Frame(streamID: .rootStream, payload: .goAway(lastStreamID: .maxID, errorCode: .noError, opaqueData: nil))
        self.channel.writeAndFlush(frame, promise: nil)
    }

    func close() {
        self.channel.close(promise: nil)
    }
}

/// Reports a tunnel's handshake and its end to the tunnel's owner.
private final class TunnelObserver: ChannelInboundHandler {
    typealias InboundIn = HTTP2Frame

    private let connection: TunnelConnection
    private let events: TunnelConnection.Events
    private var lastError: Error?

    init(connection: TunnelConnection, events: TunnelConnection.Events) {
        self.connection = connection
        self.events = events
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if let completed = event as? TLSHandshakeCompleted {
            self.connection.identified(as: completed.peer.node)
            if self.connection.isDialer { self.connection.openControlStream(peer: completed.peer.node) }
            self.events.up(self.connection, completed)
        }
        context.fireUserInboundEventTriggered(event)
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        // Keep the first error: it is the cause; later ones are consequences.
        if self.lastError == nil { self.lastError = error }
        if error is TunnelDeadError {
            // The peer is gone: say so now. Closing still waits for a close_notify that will
            // never come (up to its timeout); the link must not wait with it.
            self.reportClosed()
        }
        context.close(promise: nil)
    }

    private var reported = false

    private func reportClosed() {
        guard !self.reported else { return }
        self.reported = true
        self.events.closed(self.connection, self.lastError)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        // Root-stream frames (SETTINGS, GOAWAY, WINDOW_UPDATE) need nothing from us.
    }

    func channelInactive(context: ChannelHandlerContext) {
        self.reportClosed()
        context.fireChannelInactive()
    }
}
