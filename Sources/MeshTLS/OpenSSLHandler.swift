import COpenSSL
import MeshConfig
import NIOCore

/// The NIO TLS handler over OpenSSL, fed through a ByteBuffer-backed BIO (see `TLSByteBufferBIO`).
///
/// Modelled on swift-nio-ssl's `NIOSSLHandler`: ciphertext from the network is fed to OpenSSL,
/// decrypted plaintext is gathered over a whole read burst and passed on at `channelReadComplete`,
/// writes are held until the handshake completes and are coalesced into full records on flush.
/// Every state change goes through `move(to:)`.
public final class OpenSSLHandler: ChannelDuplexHandler, RemovableChannelHandler {
    public typealias InboundIn = ByteBuffer
    public typealias InboundOut = ByteBuffer
    public typealias OutboundIn = ByteBuffer
    public typealias OutboundOut = ByteBuffer

    private enum State {
        /// Added to a channel that is not active yet.
        case idle
        /// Exchanging handshake flights; the timer fails the handshake if it takes too long.
        case handshaking(handshakeTimer: Scheduled<Void>)
        /// Client only. OpenSSL has finished, but in TLS 1.3 the client finishes before the server has
        /// checked the client's certificate: we wait for the server's session ticket (or its first
        /// data) before declaring the handshake complete, so a refusal surfaces as a handshake
        /// failure (`peerRejected`) rather than as an error on an established connection.
        /// Writes already flow in this state.
        case awaitingServerAcceptance(handshakeTimer: Scheduled<Void>)
        case active
        /// `.anyClient` only: the peer sent close_notify, so its input is over, but we may still write
        /// (a PostgreSQL server may be finishing its answer). The next handler was told `inputClosed`.
        case inputClosed
        /// We sent close_notify and wait for the peer's, at most until the timer fires.
        case closing(closeNotifyTimer: Scheduled<Void>, closePromise: EventLoopPromise<Void>?)
        /// The channel is closed or being closed; nothing more is read or written.
        case closed
    }

    private typealias PendingWrite = (data: ByteBuffer, promise: EventLoopPromise<Void>?)

    /// Ciphertext is handed to the channel in chunks of about this size, so one huge flush neither
    /// grows the write BIO without bound nor waits for all of its encryption before the first send.
    private static let ciphertextChunk = 128 * 1024

    private var state: State = .idle
    private let connection: TLSConnection
    private let handshakeTimeout: TimeAmount
    private let closeNotifyTimeout: TimeAmount
    private var pendingWrites = MarkedCircularBuffer<PendingWrite>(initialCapacity: 16)
    /// Plaintext decrypted during the current read burst; reused from burst to burst.
    private var plaintext = ByteBuffer()
    /// Small writes gathered into one full record before `SSL_write`.
    private var staging = ByteBuffer()
    /// The first bytes received, to tell a non-TLS client (HTTP, garbage) from a broken handshake.
    private var firstBytes: [UInt8] = []
    /// Set while `encryptFlushedWrites` runs; guards it against re-entry.
    private var isEncrypting = false

    /// Whether TLS ends each direction on its own (`.anyClient`): the peer's close_notify becomes
    /// `inputClosed` and `close(mode: .output)` sends ours. Between mesh peers either one closes the channel.
    private let halfCloses: Bool

    /// Set when the handshake has completed: who the peer is. Stays nil for `.anyClient` contexts.
    public private(set) var handshakeResult: TLSHandshakeCompleted?

    /// A handler between mesh peers: `context` must be a `.meshPeers` context.
    public init(
        context: TLSContext,
        policy: PeerPolicy,
        handshakeTimeout: TimeAmount = .seconds(5),
        closeNotifyTimeout: TimeAmount = .seconds(3)
    ) {
        precondition(context.audience == .meshPeers, "a mesh TLS handler needs a .meshPeers context")
        self.connection = TLSConnection(context: context, policy: policy, requiresALPN: true)
        self.handshakeTimeout = handshakeTimeout
        self.closeNotifyTimeout = closeNotifyTimeout
        self.halfCloses = false
    }

    /// A server handler for a client outside the mesh: `context` must be an `.anyClient` context. No
    /// certificate is asked for and no `TLSHandshakeCompleted` is fired. `requireALPN` refuses a client
    /// that offers no ALPN at all (PostgreSQL's direct TLS requires it). The peer's close_notify is
    /// passed on as `ChannelEvent.inputClosed` when the channel allows remote half-closure, and
    /// `close(mode: .output)` sends our close_notify and keeps reading until the peer's.
    public init(
        anyClientContext context: TLSContext,
        requireALPN: Bool = false,
        handshakeTimeout: TimeAmount = .seconds(5),
        closeNotifyTimeout: TimeAmount = .seconds(3)
    ) {
        guard case .anyClient = context.audience, context.role == .server else {
            preconditionFailure("a handler for clients outside the mesh needs an .anyClient server context")
        }
        self.connection = TLSConnection(context: context, policy: nil, requiresALPN: requireALPN)
        self.handshakeTimeout = handshakeTimeout
        self.closeNotifyTimeout = closeNotifyTimeout
        self.halfCloses = true
    }

    // MARK: The state machine

    /// The one place the state changes. Leaving a timed state cancels its timer (unless the next
    /// state keeps it running); entering `.closed` fails the writes still held. Returns the close
    /// promise a `.closing` state carried, for the caller to complete.
    private func move(
        to next: State,
        failingWritesWith writeError: any Error = ChannelError.ioOnClosedChannel
    )
        -> EventLoopPromise<Void>?
    {
        let previous = state
        switch (previous, next) {
        case (.idle, .handshaking), (.handshaking, .awaitingServerAcceptance), (.handshaking, .active),
            (.awaitingServerAcceptance, .active), (.active, .inputClosed), (.active, .closing), (.closing, .closing),
            (_, .closed):
            break
        default:
            preconditionFailure("OpenSSLHandler: no transition from \(previous) to \(next)")
        }
        state = next

        var heldPromise: EventLoopPromise<Void>? = nil
        switch (previous, next) {
        case (.handshaking, .awaitingServerAcceptance), (.closing, .closing):
            break
        case (.handshaking(let timer), _), (.awaitingServerAcceptance(let timer), _):
            timer.cancel()
        case (.closing(let timer, let promise), _):
            timer.cancel()
            heldPromise = promise
        default:
            break
        }
        if case .closed = next {
            failPendingWrites(writeError)
        }
        return heldPromise
    }

    // MARK: Channel events

    public func handlerAdded(context: ChannelHandlerContext) {
        plaintext = context.channel.allocator.buffer(capacity: 4 * TLSConnection.maxRecordPlaintext)
        staging = context.channel.allocator.buffer(capacity: TLSConnection.maxRecordPlaintext)
        if context.channel.isActive {
            startHandshake(context: context)
        }
    }

    public func handlerRemoved(context: ChannelHandlerContext) {
        if case .closed = state { return }
        move(to: .closed)?.fail(ChannelError.ioOnClosedChannel)
    }

    public func channelActive(context: ChannelHandlerContext) {
        // Passed on first so that a handshake failing at once still shows active before inactive.
        context.fireChannelActive()
        startHandshake(context: context)
    }

    public func channelInactive(context: ChannelHandlerContext) {
        switch state {
        case .idle, .closed:
            break
        case .handshaking, .awaitingServerAcceptance:
            let error = TLSHandshakeError(.eof, "peer closed the connection during the TLS handshake")
            _ = move(to: .closed, failingWritesWith: error)
            context.fireErrorCaught(error)
        case .active:
            _ = move(to: .closed, failingWritesWith: TLSConnectionError.uncleanShutdown)
            context.fireErrorCaught(TLSConnectionError.uncleanShutdown)
        case .inputClosed:
            // The peer ended cleanly with close_notify; only our unsent writes are lost.
            _ = move(to: .closed)
        case .closing:
            // We asked to close and the channel is closed, so the close promise succeeds; the missing
            // close_notify is still reported, since the peer's last bytes may be cut.
            move(to: .closed)?.succeed(())
            context.fireErrorCaught(TLSConnectionError.uncleanShutdown)
        }
        context.fireChannelInactive()
    }

    public func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let buffer = unwrapInboundIn(data)
        if case .idle = state {
            startHandshake(context: context)
        }
        switch state {
        case .idle, .closed, .inputClosed:
            return  // nothing reads ciphertext after close, nor after the peer's close_notify
        case .handshaking:
            if let notTLS = notTLSProblem(buffer) {
                failHandshake(context: context, error: notTLS)
                return
            }
            connection.feed(buffer)
            handshakeStep(context: context)
        case .awaitingServerAcceptance, .active, .closing:
            connection.feed(buffer)
            decryptAvailable(context: context)
        }
    }

    public func channelReadComplete(context: ChannelHandlerContext) {
        if !deliverPlaintext(context: context) {
            // Nothing for the next handler; with autoRead off it would never ask again, so we do.
            if let autoRead = try? context.channel.syncOptions?.getOption(ChannelOptions.autoRead), !autoRead {
                context.read()
            }
        }
    }

    public func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        guard let event = event as? ChannelEvent, event == .inputClosed else {
            context.fireUserInboundEventTriggered(event)
            return
        }
        // TCP half-closed by the peer (only seen with allowRemoteHalfClosure).
        switch state {
        case .handshaking, .awaitingServerAcceptance:
            failHandshake(
                context: context,
                error: TLSHandshakeError(.eof, "peer closed the connection during the TLS handshake")
            )
        case .active, .closing:
            let promise = move(to: .closed, failingWritesWith: TLSConnectionError.uncleanShutdown)
            context.fireErrorCaught(TLSConnectionError.uncleanShutdown)
            context.close(promise: promise)
        case .inputClosed:
            break  // the next handler already heard of the end of input, at the close_notify
        case .idle, .closed:
            context.fireUserInboundEventTriggered(event)
        }
    }

    public func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        switch state {
        case .closed:
            promise?.fail(ChannelError.ioOnClosedChannel)
        case .closing:
            promise?.fail(ChannelError.outputClosed)
        case .idle, .handshaking, .awaitingServerAcceptance, .active, .inputClosed:
            pendingWrites.append((unwrapOutboundIn(data), promise))
        }
    }

    public func flush(context: ChannelHandlerContext) {
        pendingWrites.mark()
        switch state {
        case .awaitingServerAcceptance, .active, .inputClosed:
            encryptFlushedWrites(context: context)
        case .idle, .handshaking, .closing, .closed:
            break  // held until the handshake completes, or already failed
        }
    }

    public func close(context: ChannelHandlerContext, mode: CloseMode, promise: EventLoopPromise<Void>?) {
        guard mode == .all || (mode == .output && halfCloses) else {
            // Between mesh peers TLS half-close is not offered: HTTP/2 runs over this and never needs it.
            // For other clients ending our output is what a full close does first: send close_notify,
            // then read on until the peer's.
            promise?.fail(ChannelError.operationUnsupported)
            return
        }
        switch state {
        case .idle, .handshaking, .awaitingServerAcceptance:
            // No close_notify before the handshake is over: there is no session to close.
            _ = move(to: .closed)
            context.close(promise: promise)
        case .active:
            switch connection.shutdown() {
            case .sent:
                sendCiphertext(context: context)
                // The flush can fail (the peer reset the socket) and close the channel under us:
                // then the state is no longer `.active` and there is no close_notify to wait for.
                guard case .active = state else { return close(context: context, mode: mode, promise: promise) }
                let timer = context.eventLoop.assumeIsolated().scheduleTask(in: closeNotifyTimeout) {
                    self.closeNotifyTimedOut(context: context)
                }
                _ = move(to: .closing(closeNotifyTimer: timer, closePromise: promise))
            case .complete, .failed:
                sendCiphertext(context: context)
                _ = move(to: .closed)
                context.close(promise: promise)
            }
        case .inputClosed:
            // Both close_notify alerts are exchanged once ours is out: nothing is left to wait for.
            _ = connection.shutdown()
            sendCiphertext(context: context)
            _ = move(to: .closed)
            context.close(promise: promise)
        case .closing(let timer, let existing):
            if let promise {
                if let existing {
                    existing.futureResult.cascade(to: promise)
                } else {
                    _ = move(to: .closing(closeNotifyTimer: timer, closePromise: promise))
                }
            }
        case .closed:
            context.close(promise: promise)
        }
    }

    // MARK: Handshake

    private func startHandshake(context: ChannelHandlerContext) {
        guard case .idle = state else { return }
        let timer = context.eventLoop.assumeIsolated().scheduleTask(in: handshakeTimeout) {
            self.handshakeTimedOut(context: context)
        }
        _ = move(to: .handshaking(handshakeTimer: timer))
        handshakeStep(context: context)
    }

    private func handshakeStep(context: ChannelHandlerContext) {
        switch connection.handshake() {
        case .wantMore:
            sendCiphertext(context: context)
        case .failed(let error):
            failHandshake(context: context, error: error)
        case .complete:
            openSSLHandshakeFinished(context: context)
        }
    }

    /// OpenSSL is done: the peer passed chain, dates, CRL and identity checks in the verify callback.
    private func openSSLHandshakeFinished(context: ChannelHandlerContext) {
        guard case .handshaking(let timer) = state else { return }
        guard connection.verifiedPeer != nil || connection.policy == nil else {
            // Unreachable with SSL_VERIFY_FAIL_IF_NO_PEER_CERT; refuse rather than trust blindly.
            failHandshake(context: context, error: TLSHandshakeError(.noCertificate, "peer was never verified"))
            return
        }
        if connection.role == .client, connection.alpn != "h2" {
            failHandshake(
                context: context,
                error: TLSHandshakeError(.other, "server did not select ALPN \"h2\"; it is not a mesh node")
            )
            return
        }
        sendCiphertext(context: context)
        switch connection.role {
        case .server:
            becomeActive(context: context)
        case .client:
            _ = move(to: .awaitingServerAcceptance(handshakeTimer: timer))
            encryptFlushedWrites(context: context)
        }
        // Records that came in the same read as the last flight (a ticket, application data).
        decryptAvailable(context: context)
    }

    private func becomeActive(context: ChannelHandlerContext) {
        _ = move(to: .active)
        // A mesh peer always has a verified identity here (checked in openSSLHandshakeFinished).
        if let peer = connection.verifiedPeer {
            let result = TLSHandshakeCompleted(
                peer: peer.identity,
                peerCertificateNotAfter: peer.notAfter,
                peerCertificateSerial: peer.serial,
                alpn: connection.alpn,
                peerChainValidity: connection.peerChainValidity,
                peerAuthorities: connection.peerAuthorities
            )
            handshakeResult = result
            context.fireUserInboundEventTriggered(result)
        }
        encryptFlushedWrites(context: context)
    }

    private func failHandshake(context: ChannelHandlerContext, error: TLSHandshakeError) {
        switch state {
        case .idle, .handshaking, .awaitingServerAcceptance: break
        case .active, .inputClosed, .closing, .closed: return
        }
        sendCiphertext(context: context)  // the alert OpenSSL queued, if any
        _ = move(to: .closed, failingWritesWith: error)
        context.fireErrorCaught(error)
        context.close(promise: nil)
    }

    private func handshakeTimedOut(context: ChannelHandlerContext) {
        let seconds = Double(handshakeTimeout.nanoseconds) / 1e9
        let detail =
            if case .awaitingServerAcceptance = state {
                "server finished the TLS handshake but sent neither a session ticket nor data within \(seconds) s, "
                    + "so it never confirmed it accepted our certificate"
            } else {
                "no complete TLS handshake within \(seconds) s; the peer is too slow or silent"
            }
        failHandshake(context: context, error: TLSHandshakeError(.timeout, detail))
    }

    /// TLS records start with content type 22 (handshake) or 21 (alert) and version 3.x. Anything else
    /// (an HTTP request, a PostgreSQL startup packet, noise) is named as such instead of as whatever
    /// OpenSSL makes of it.
    private func notTLSProblem(_ buffer: ByteBuffer) -> TLSHandshakeError? {
        guard firstBytes.count < 3 else { return nil }
        let wanted = min(3 - firstBytes.count, buffer.readableBytes)
        firstBytes += buffer.getBytes(at: buffer.readerIndex, length: wanted) ?? []
        let looksLikeTLS =
            (firstBytes.count < 1 || firstBytes[0] == 22 || firstBytes[0] == 21)
            && (firstBytes.count < 2 || firstBytes[1] == 3) && (firstBytes.count < 3 || firstBytes[2] <= 4)
        if looksLikeTLS { return nil }
        let sample = buffer.getBytes(at: buffer.readerIndex, length: min(16, buffer.readableBytes)) ?? firstBytes
        let hex = sample.map { String($0, radix: 16).count == 1 ? "0" + String($0, radix: 16) : String($0, radix: 16) }
        let text = String(sample.map { (32...126).contains($0) ? Character(UnicodeScalar($0)) : "." })
        return TLSHandshakeError(
            .notTLS,
            "peer's first bytes are not a TLS record: \(hex.joined(separator: " ")) (\"\(text)\")"
        )
    }

    // MARK: Reading

    /// Decrypts whatever the read BIO holds into `plaintext` and acts on close_notify or errors.
    private func decryptAvailable(context: ChannelHandlerContext) {
        let step = connection.readPlaintext(into: &plaintext)
        if case .awaitingServerAcceptance = state {
            if case .failed(let queued) = step {
                failHandshake(
                    context: context,
                    error: TLSHandshakeError.classify(queued: queued, verifyRejection: connection.callbackRejection)
                )
                return
            }
            let accepted = connection.serverSentTicket || plaintext.readableBytes > 0
            if case .closeNotify = step {} else if !accepted { return }
            becomeActive(context: context)
        }
        switch step {
        case .drained:
            // Post-handshake messages (KeyUpdate) may need an answer.
            sendCiphertext(context: context)
        case .closeNotify:
            peerSentCloseNotify(context: context)
        case .failed(let queued):
            failConnection(context: context, error: .recordError(TLSErrorQueue.describe(queued)))
        }
    }

    /// Hands the burst's plaintext to the next handler as one buffer. Returns whether there was any.
    @discardableResult
    private func deliverPlaintext(context: ChannelHandlerContext) -> Bool {
        guard plaintext.readableBytes > 0 else { return false }
        let burst = plaintext
        // Rewind instead of clear(): once the next handler lets go of `burst`, the storage is ours
        // again and the next burst reuses it without allocating.
        plaintext.moveReaderIndex(to: 0)
        plaintext.moveWriterIndex(to: 0)
        context.fireChannelRead(wrapInboundOut(burst))
        context.fireChannelReadComplete()
        return true
    }

    /// The peer is done sending. Deliver what came before its close_notify, answer with ours, close.
    private func peerSentCloseNotify(context: ChannelHandlerContext) {
        deliverPlaintext(context: context)
        // Delivery ran user code, which may have closed us already.
        switch state {
        case .active where halfCloses && allowsRemoteHalfClosure(context):
            _ = move(to: .inputClosed)
            context.fireUserInboundEventTriggered(ChannelEvent.inputClosed)
        case .active, .closing:
            _ = connection.shutdown()
            sendCiphertext(context: context)
            let promise = move(to: .closed)
            context.close(promise: promise)
        case .idle, .handshaking, .awaitingServerAcceptance, .inputClosed, .closed:
            break
        }
    }

    /// Whether the next handlers take an end of input without a close, as with a plain TCP socket.
    private func allowsRemoteHalfClosure(_ context: ChannelHandlerContext) -> Bool {
        (try? context.channel.syncOptions?.getOption(ChannelOptions.allowRemoteHalfClosure)) ?? false
    }

    /// A broken record after the handshake: send OpenSSL's alert, report, close.
    private func failConnection(context: ChannelHandlerContext, error: TLSConnectionError) {
        sendCiphertext(context: context)
        let promise = move(to: .closed, failingWritesWith: error)
        context.fireErrorCaught(error)
        context.close(promise: promise)
    }

    private func closeNotifyTimedOut(context: ChannelHandlerContext) {
        guard case .closing = state else { return }
        let promise = move(to: .closed)
        context.fireErrorCaught(TLSConnectionError.closeNotifyTimeout)
        context.close(promise: promise)
    }

    // MARK: Writing

    /// Encrypts every flushed write. Small writes are copied into `staging` until a full record's
    /// worth, large ones go to `SSL_write` directly in whole records; the ciphertext leaves in
    /// `ciphertextChunk`-sized channel writes followed by one flush.
    private func encryptFlushedWrites(context: ChannelHandlerContext) {
        // Our own flushes complete write promises and can fire channelWritabilityChanged; a handler
        // reacting to either may write and flush again, re-entering here. The running call owns the
        // loop and picks those writes up, in order, on its next pass.
        guard !isEncrypting else { return }
        isEncrypting = true
        defer { isEncrypting = false }
        // Bounded: each pass takes every write flushed so far; more passes happen only if callbacks keep
        // flushing from inside our flush.
        for _ in 0..<1_000 {
            guard pendingWrites.hasMark, canEncrypt else { return }
            encryptOnePass(context: context)
        }
    }

    private var canEncrypt: Bool {
        switch state {
        case .awaitingServerAcceptance, .active, .inputClosed: return true
        case .idle, .handshaking, .closing, .closed: return false
        }
    }

    private func encryptOnePass(context: ChannelHandlerContext) {
        var promises: [EventLoopPromise<Void>] = []
        var failure: [TLSQueuedError]? = nil
        while pendingWrites.hasMark, canEncrypt, let write = pendingWrites.popFirst() {
            if let promise = write.promise { promises.append(promise) }
            failure = encrypt(write.data, last: !pendingWrites.hasMark, context: context)
            if failure != nil { break }
        }
        guard canEncrypt else {
            // Closed by a callback inside one of our flushes: what is still staged never goes out.
            staging.clear()
            for promise in promises { promise.fail(ChannelError.outputClosed) }
            return
        }
        if failure == nil, staging.readableBytes > 0 {
            failure = sslWrite(staging, context: context)
            staging.clear()
        }
        if let failure {
            let error = TLSConnectionError.recordError("encrypting failed: \(TLSErrorQueue.describe(failure))")
            for promise in promises { promise.fail(error) }
            failConnection(context: context, error: error)
            return
        }
        // Flush even when the last chunk already went out inside sslWrite.
        sendCiphertext(context: context, promise: Self.combine(promises, on: context.eventLoop), flush: false)
        context.flush()
    }

    private func encrypt(_ data: ByteBuffer, last: Bool, context: ChannelHandlerContext) -> [TLSQueuedError]? {
        // The flush's last write with nothing staged before it (one message, the usual case) goes to
        // SSL_write as it is: staging it would produce the same records after a copy.
        if last, staging.readableBytes == 0 { return sslWrite(data, context: context) }
        var data = data
        let record = TLSConnection.maxRecordPlaintext
        if staging.readableBytes > 0 || data.readableBytes < record {
            var head = data.readSlice(length: min(data.readableBytes, record - staging.readableBytes))!
            staging.writeBuffer(&head)
            if staging.readableBytes == record {
                if let failure = sslWrite(staging, context: context) { return failure }
                staging.clear()
            }
        }
        let wholeRecords = data.readableBytes - data.readableBytes % record
        if wholeRecords > 0, let failure = sslWrite(data.readSlice(length: wholeRecords)!, context: context) {
            return failure
        }
        staging.writeBuffer(&data)  // the tail, shorter than a record; staging is empty here
        return nil
    }

    /// `SSL_write` in chunks, passing ciphertext on whenever a chunk's worth is waiting.
    private func sslWrite(_ data: ByteBuffer, context: ChannelHandlerContext) -> [TLSQueuedError]? {
        var data = data
        while data.readableBytes > 0 {
            let slice = data.readSlice(length: min(data.readableBytes, Self.ciphertextChunk))!
            if let failure = slice.withUnsafeReadableBytes({ connection.write($0) }) { return failure }
            if connection.pendingCiphertext >= Self.ciphertextChunk, let out = connection.takeCiphertext() {
                // Flushed at once so the socket and the peer's decryption overlap with our encryption
                // of the rest.
                context.writeAndFlush(wrapOutboundOut(out), promise: nil)
            }
        }
        return nil
    }

    /// Writes and flushes whatever ciphertext OpenSSL produced (handshake flights, alerts, records).
    private func sendCiphertext(
        context: ChannelHandlerContext,
        promise: EventLoopPromise<Void>? = nil,
        flush: Bool = true
    ) {
        if let out = connection.takeCiphertext() {
            context.write(wrapOutboundOut(out), promise: promise)
        } else if let promise {
            // Keep ordering: the promise completes after earlier chunk writes do.
            context.write(wrapOutboundOut(context.channel.allocator.buffer(capacity: 0)), promise: promise)
        } else {
            return
        }
        if flush { context.flush() }
    }

    private func failPendingWrites(_ error: any Error) {
        while let write = pendingWrites.popFirst() {
            write.promise?.fail(error)
        }
        staging.clear()
    }

    /// One promise standing for many, completed when the last ciphertext write completes.
    private static func combine(_ promises: [EventLoopPromise<Void>], on loop: EventLoop) -> EventLoopPromise<Void>? {
        guard promises.count > 1 else { return promises.first }
        let combined = loop.makePromise(of: Void.self)
        combined.futureResult.whenComplete { result in
            switch result {
            case .success: for promise in promises { promise.succeed(()) }
            case .failure(let error): for promise in promises { promise.fail(error) }
            }
        }
        return combined
    }
}

@available(*, unavailable)
extension OpenSSLHandler: Sendable {}
