import Foundation
import Logging
import MeshConfig
import MeshTLS
import NIOConcurrencyHelpers
import NIOCore
import NIOHTTP2

/// One TCP connection to a peer carrying TLS 1.3 and HTTP/2: the tunnel. Built the same way on the
/// dialing and the accepting side; only the HTTP/2 mode and the TLS peer policy differ. The
/// pipeline: OpenSSLHandler → TunnelFrameHandler → LivenessHandler → TunnelStreams
/// → TunnelObserver.
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
        /// The connections to service targets kept ready on a loop (a service's `preconnect`).
        var spares: @Sendable (EventLoop) -> SpareConnections? = { _ in nil }
    }

    let channel: Channel
    /// The frame-level stream handler; touched only on the tunnel's event loop.
    private let streams: TunnelStreams
    private let liveness: NIOLoopBound<(LivenessHandler, ChannelHandlerContext)>
    /// The verified peer name; set once, on the event loop, when the handshake completes.
    private let identity: NIOLoopBoundBox<String?>
    private let mode: NIOHTTP2Handler.ParserMode
    /// This node's certificate and CA bundle, as the TLS context this tunnel was built with holds them.
    let localCredentials: LocalCredentials
    /// Set once, when the handshake completes; read from any thread.
    private let authenticated = NIOLockedValueBox<TunnelCredentials?>(nil)
    /// The hard end of the tunnel (see `close(at:because:)`); loop-confined.
    private let deadline: NIOLoopBoundBox<(at: Date, task: Scheduled<Void>)?>

    /// Adds TLS, HTTP/2, liveness, the streams and the observer to a fresh channel. Call on the
    /// channel's loop.
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
        try sync.addHandler(
            OpenSSLHandler(
                context: tls,
                policy: policy,
                handshakeTimeout: TimeAmount(settings.handshakeTimeout)
            )
        )
        // No stream multiplexer: `TunnelStreams` takes the frames.
        try sync.addHandler(TunnelFraming.frameHandler(dialer: mode == .client, maxStreamsPerPeer: settings.maxStreamsPerPeer))
        // Weak: the connection holds the liveness handler, whose callback this is; a strong
        // reference made a cycle that kept every closed tunnel (its channel, TLS and HTTP/2
        // state: ~300 KiB) alive forever, one per reconnect.
        let livenessBox = NIOLoopBoundBox<WeakConnection>(WeakConnection(), eventLoop: channel.eventLoop)
        let liveness = LivenessHandler(
            interval: TimeAmount(settings.pingInterval),
            deadAfter: settings.deadAfter,
            asksFirst: mode == .client
        ) { rtt in
            if let connection = livenessBox.value.connection { events.rtt(connection, rtt) }
        }
        try sync.addHandler(liveness)
        let livenessContext = try sync.context(handler: liveness)
        let streams = TunnelStreams(isDialer: mode == .client, serving: serving, logger: logger)
        try sync.addHandler(streams)
        let connection = TunnelConnection(
            channel: channel,
            streams: streams,
            liveness: NIOLoopBound((liveness, livenessContext), eventLoop: channel.eventLoop),
            identity: NIOLoopBoundBox(nil, eventLoop: channel.eventLoop),
            mode: mode,
            localCredentials: tls.credentials
        )
        livenessBox.value = WeakConnection(connection: connection)
        try sync.addHandler(TunnelObserver(connection: connection, events: events))
        return connection
    }

    /// A reference to a connection that does not keep it alive.
    private struct WeakConnection {
        weak var connection: TunnelConnection?
    }

    private init(
        channel: Channel,
        streams: TunnelStreams,
        liveness: NIOLoopBound<(LivenessHandler, ChannelHandlerContext)>,
        identity: NIOLoopBoundBox<String?>,
        mode: NIOHTTP2Handler.ParserMode,
        localCredentials: LocalCredentials
    ) {
        self.channel = channel
        self.streams = streams
        self.liveness = liveness
        self.identity = identity
        self.mode = mode
        self.localCredentials = localCredentials
        self.deadline = NIOLoopBoundBox(nil, eventLoop: channel.eventLoop)
        channel.closeFuture.whenComplete { [deadline = self.deadline] _ in deadline.value?.task.cancel() }
    }

    /// What the handshake authenticated, once it completed.
    var credentials: TunnelCredentials? { self.authenticated.withLockedValue { $0 } }

    /// Whether this node dialed the tunnel. Only for status and logs: streams open the same way in
    /// both directions.
    var isDialer: Bool { self.mode == .client }

    /// The verified peer name, once TLS completed. Call on the event loop.
    var peerName: String? { self.identity.value }

    /// Records the verified peer and what authenticated it. Called by the observer on the event loop.
    fileprivate func identified(_ completed: TLSHandshakeCompleted) {
        self.identity.value = completed.peer.node
        let credentials = TunnelCredentials(authenticatedAt: Date(), local: self.localCredentials, handshake: completed)
        self.authenticated.withLockedValue { $0 = credentials }
    }

    /// Opens a stream to `service` on the peer for the local connection `socket`. Call on the
    /// socket's event loop before it reads; bytes the caller fires down its pipeline afterwards go
    /// on the stream. `opened` hears (on the tunnel's loop) whether the peer accepted it; on a
    /// failure the channel is handed back as it was, for the caller to answer and close.
    func openStream(
        service: String,
        for socket: Channel,
        opened: @escaping @Sendable (Result<Void, Error>) -> Void
    ) throws {
        let stream = TunnelStream(service: service, phase: .created(held: []), sendCredit: TunnelTuning.streamWindow)
        stream.onOpened = opened
        let side = TunnelSide(streams: self.streams, stream: stream, loop: self.channel.eventLoop)
        let handler = StreamSocket(loop: socket.eventLoop, tunnel: side)
        // Set before the tunnel sees the stream: `side.open()` hands it over (hopping if needed).
        stream.socket = handler
        try socket.pipeline.syncOperations.addHandler(handler)
        side.open()
    }

    /// Sends `bytes` to `service` on a stream of its own and ends it; completes once the service
    /// has closed it too (a PostgreSQL CancelRequest is such a one-shot exchange), failing after
    /// `timeout`.
    func deliver(_ bytes: ByteBuffer, toService service: String, timeout: TimeAmount) -> EventLoopFuture<Void> {
        let loop = self.channel.eventLoop
        let done = loop.makePromise(of: Void.self)
        let stream = TunnelStream(service: service, phase: .created(held: [bytes]), sendCredit: TunnelTuning.streamWindow)
        stream.localEnded = true
        stream.oneShot = done
        let side = TunnelSide(streams: self.streams, stream: stream, loop: loop)
        side.open()
        let deadline = loop.scheduleTask(in: timeout) { side.cancel() }
        done.futureResult.whenComplete { _ in deadline.cancel() }
        return done.futureResult
    }

    /// Sends `note` to the peer on the control stream. Dropped when the control stream is not open
    /// (yet): notes are state that their sender repeats, not messages that must arrive.
    func send(_ note: PeerNote) {
        let streams = self.streams  // touched only inside the task, on its loop
        self.channel.eventLoop.execute { _ = streams.send(note) }
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

    /// A fresh tunnel to the peer took over: finish the streams on this one, then close it (see
    /// `TunnelStreams.drain`).
    func drain() {
        let streams = self.streams
        self.channel.eventLoop.execute { streams.drain() }
    }

    /// Closes the tunnel at `date` unless it closed before, resetting the streams still on it, with
    /// `error` as the reason its owner hears; an earlier deadline replaces a later one.
    func close(at date: Date, because error: ReauthenticationDeadlineError) {
        let streams = self.streams
        let deadline = self.deadline
        let loop = self.channel.eventLoop
        loop.execute {
            if let current = deadline.value, current.at <= date { return }
            deadline.value?.task.cancel()
            let task = loop.assumeIsolated().scheduleTask(in: .until(date)) { streams.expire(error) }
            deadline.value = (date, task)
        }
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
            self.connection.identified(completed)
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
