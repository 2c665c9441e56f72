import Logging
import MeshTLS
import MeshTunnel
import NIOCore

/// The first handler on a balancer listener's accepted connection. It reads the client's first
/// packets: answers SSLRequest with 'S' and starts TLS when the balancer has its own certificate
/// (`tls`), else with 'N' (this hop is loopback; the tunnel encrypts what leaves the node); answers
/// GSSENCRequest with 'N'; hands a CancelRequest to its session and closes; and for a StartupMessage
/// asks its session (`FrontDoorSession.start`) to route and join the connection, passes the
/// StartupMessage and anything after it on unchanged, so authentication stays between client and
/// PostgreSQL, and removes itself. A refusal or a bad packet gets an ErrorResponse, then the
/// connection is closed.
///
/// TLS, when configured: the client may ask for it with SSLRequest (every libpq) or start it at once
/// (PostgreSQL 17's `sslnegotiation=direct`, first byte 0x16, which must then offer ALPN "postgresql",
/// as PostgreSQL requires). Either way this handler hands over to a fresh front door behind a TLS
/// handler, which reads the StartupMessage from the decrypted stream. A client that sends its
/// StartupMessage in plaintext is still served, like a PostgreSQL `host` (not `hostssl`) line: the
/// balancer listens on the client's own machine, and what leaves the node is always in the tunnel.
/// Without `tls`, a direct-TLS client is closed without an answer: it would read a plaintext
/// ErrorResponse as a broken TLS record, and PostgreSQL closes such a connection the same way.
public final class FrontDoorHandler: ChannelInboundHandler, RemovableChannelHandler {
    public typealias InboundIn = ByteBuffer
    public typealias InboundOut = ByteBuffer
    public typealias OutboundOut = ByteBuffer

    /// Where a session goes: a service and the node serving it.
    public typealias Route = (service: String, node: String)

    /// PostgreSQL's authentication_timeout default: a client that sends no StartupMessage is dropped.
    public static let defaultStartupTimeout = TimeAmount.seconds(60)
    /// One SSLRequest and one GSSENCRequest is all a client can mean; more is a loop or an attack.
    static let maxNegotiations = 2
    /// The first byte of a TLS handshake record: a client starting TLS without an SSLRequest.
    static let tlsHandshakeRecord: UInt8 = 0x16

    private enum State {
        /// Collecting the first packets; `negotiations` counts answered SSL/GSS requests.
        case reading(buffer: ByteBuffer, negotiations: Int)
        /// Routed, refused, cancelled or handed over to a front door behind TLS: whatever still
        /// arrives is not ours to read.
        case finished
    }

    private var state: State
    private var startupTimer: Scheduled<Void>?
    /// When the client must have sent its StartupMessage; kept across the hand-over to TLS.
    private var startupDeadline: NIODeadline?
    private let session: any FrontDoorSession
    private let tls: TLSContext?
    /// Whether this front door reads from behind a TLS handler.
    private let encrypted: Bool
    private let startupTimeout: TimeAmount
    private let logger: Logger

    /// - session: routes and joins the connection, and delivers cancels (a `BalancerSession` in meshd).
    /// - tls: the balancer's server context (`FrontDoorTLS.context`); nil answers SSLRequest with 'N'.
    public convenience init(
        session: any FrontDoorSession,
        tls: TLSContext? = nil,
        startupTimeout: TimeAmount = FrontDoorHandler.defaultStartupTimeout,
        logger: Logger
    ) {
        self.init(
            session: session,
            tls: tls,
            encrypted: false,
            negotiations: 0,
            startupTimeout: startupTimeout,
            startupDeadline: nil,
            logger: logger
        )
    }

    private init(
        session: any FrontDoorSession,
        tls: TLSContext?,
        encrypted: Bool,
        negotiations: Int,
        startupTimeout: TimeAmount,
        startupDeadline: NIODeadline?,
        logger: Logger
    ) {
        self.session = session
        self.tls = tls
        self.encrypted = encrypted
        self.state = .reading(buffer: ByteBuffer(), negotiations: negotiations)
        self.startupTimeout = startupTimeout
        self.startupDeadline = startupDeadline
        self.logger = logger
    }

    public func handlerAdded(context: ChannelHandlerContext) {
        let deadline = self.startupDeadline ?? context.eventLoop.now + self.startupTimeout
        self.startupDeadline = deadline
        self.startupTimer = context.eventLoop.assumeIsolated().scheduleTask(deadline: deadline) {
            self.logger.debug("front door: no StartupMessage within \(self.startupTimeout), closing")
            self.state = .finished
            context.close(promise: nil)
        }
    }

    public func handlerRemoved(context: ChannelHandlerContext) {
        self.startupTimer?.cancel()
        self.startupTimer = nil
    }

    public func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard case .reading(var buffer, let negotiations) = self.state else { return }
        var bytes = self.unwrapInboundIn(data)
        buffer.writeBuffer(&bytes)
        self.state = .reading(buffer: buffer, negotiations: negotiations)
        self.readPackets(context: context)
    }

    public func channelReadComplete(context: ChannelHandlerContext) {
        // Bytes already passed on were followed by their own read-complete; nothing to add while reading.
        if case .reading = self.state { return }
        context.fireChannelReadComplete()
    }

    public func errorCaught(context: ChannelHandlerContext, error: any Error) {
        if error is TLSHandshakeError {
            self.logger.info("front door: TLS handshake with the client failed: \(error)")
        } else {
            self.logger.debug("front door: \(error)")
        }
        self.state = .finished
        context.close(promise: nil)
    }

    public func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        // A client that ends its input before its StartupMessage will send nothing more.
        if case .reading = self.state, case .some(.inputClosed) = event as? ChannelEvent {
            self.logger.debug("front door: the client closed before its StartupMessage")
            self.state = .finished
            context.close(promise: nil)
            return
        }
        context.fireUserInboundEventTriggered(event)
    }

    /// Reads every complete packet in the buffer and acts on each.
    private func readPackets(context: ChannelHandlerContext) {
        while case .reading(var buffer, let negotiations) = self.state {
            if !self.encrypted, negotiations == 0,
                buffer.getInteger(at: buffer.readerIndex, as: UInt8.self) == Self.tlsHandshakeRecord
            {
                return self.directTLS(context: context, ciphertext: buffer)
            }
            // Moving the reader index does not copy: `unread` shares the storage.
            let unread = buffer
            let packet: StartupPacket
            do {
                guard case .packet(let read) = try StartupPacket.read(from: &buffer) else {
                    self.state = .reading(buffer: buffer, negotiations: negotiations)
                    return
                }
                packet = read
            } catch {
                self.logger.info("front door: \(error)")
                return self.refuse(context: context, with: error.errorResponse)
            }

            switch packet {
            case .sslRequest, .gssEncRequest:
                guard negotiations < Self.maxNegotiations else {
                    return self.refuse(
                        context: context,
                        with: ErrorResponse(code: .protocolViolation, message: "tunnelmesh: too many SSL/GSSENC requests")
                    )
                }
                if packet == .sslRequest, let tls = self.tls {
                    return self.acceptSSLRequest(context: context, tls: tls, after: buffer, negotiations: negotiations + 1)
                }
                self.state = .reading(buffer: buffer, negotiations: negotiations + 1)
                context.writeAndFlush(self.wrapOutboundOut(context.channel.allocator.buffer(string: "N")), promise: nil)

            case .cancelRequest(let key):
                // PostgreSQL answers a CancelRequest with nothing and closes; so do we.
                self.state = .finished
                self.session.cancel(key)
                context.close(promise: nil)

            case .startup(let message):
                self.state = .finished
                let startupBytes = unread.getSlice(at: unread.readerIndex, length: buffer.readerIndex - unread.readerIndex)!
                self.pass(message, bytes: startupBytes, rest: buffer, context: context)
            }
        }
    }

    // MARK: TLS

    /// Answers 'S' and starts TLS. The client waits for the answer before its ClientHello, so bytes
    /// already here were sent in plaintext after the request: refused, as PostgreSQL does, since a
    /// man in the middle could have put them there to be taken for part of the encrypted session.
    private func acceptSSLRequest(context: ChannelHandlerContext, tls: TLSContext, after rest: ByteBuffer, negotiations: Int) {
        if self.encrypted {
            return self.refuse(
                context: context,
                with: ErrorResponse(code: .protocolViolation, message: "tunnelmesh: SSLRequest on a connection that is already encrypted")
            )
        }
        guard rest.readableBytes == 0 else {
            self.logger.info("front door: \(rest.readableBytes) unencrypted bytes followed the SSLRequest, closing")
            return self.refuse(
                context: context,
                with: ErrorResponse(
                    code: .protocolViolation,
                    message: "tunnelmesh: received unencrypted data after SSL request",
                    detail: "This could be either a client-software bug or evidence of an attempted man-in-the-middle attack."
                )
            )
        }
        // Written before the TLS handler exists, so it leaves in plaintext.
        context.writeAndFlush(self.wrapOutboundOut(context.channel.allocator.buffer(string: "S")), promise: nil)
        self.startTLS(context: context, tls: tls, ciphertext: rest, direct: false, negotiations: negotiations)
    }

    /// A ClientHello without an SSLRequest before it (PostgreSQL 17 `sslnegotiation=direct`).
    private func directTLS(context: ChannelHandlerContext, ciphertext: ByteBuffer) {
        guard let tls = self.tls else {
            self.logger.info(
                "front door: the client started TLS directly (sslnegotiation=direct), but this balancer has no tls block; closing. Add balancers.<name>.tls, or use the client's default sslnegotiation=postgres"
            )
            self.state = .finished
            self.startupTimer?.cancel()
            context.close(promise: nil)
            return
        }
        self.startTLS(context: context, tls: tls, ciphertext: ciphertext, direct: true, negotiations: 0)
    }

    /// Puts a TLS handler and a fresh front door after this one, passes on the bytes read so far
    /// (ciphertext) and leaves: from here on the client's packets are read decrypted.
    private func startTLS(
        context: ChannelHandlerContext,
        tls: TLSContext,
        ciphertext: ByteBuffer,
        direct: Bool,
        negotiations: Int
    ) {
        self.state = .finished
        let next = FrontDoorHandler(
            session: self.session,
            tls: self.tls,
            encrypted: true,
            negotiations: negotiations,
            startupTimeout: self.startupTimeout,
            startupDeadline: self.startupDeadline,
            logger: self.logger
        )
        let handshake = OpenSSLHandler(anyClientContext: tls, requireALPN: direct)
        do {
            try context.pipeline.syncOperations.addHandlers([handshake, next], position: .after(self))
        } catch {
            self.logger.warning("front door: cannot start TLS: \(error)")
            context.close(promise: nil)
            return
        }
        if ciphertext.readableBytes > 0 {
            context.fireChannelRead(self.wrapInboundOut(ciphertext))
            context.fireChannelReadComplete()
        }
        context.pipeline.syncOperations.removeHandler(context: context, promise: nil)
    }

    // MARK: Routing

    /// Has the session routed and joined, then hands it the StartupMessage and what followed it.
    private func pass(_ message: StartupMessage, bytes: ByteBuffer, rest: ByteBuffer, context: ChannelHandlerContext) {
        if case .failure(let refusal) = self.session.start(message) {
            // No node qualifying is routine (57P03); a chosen node out of reach (08006) is not.
            self.logger.log(
                level: refusal.code == .connectionFailure ? .warning : .info,
                "front door: refused \(message.user ?? "?")@\(message.database ?? "?"): \(refusal.message)"
            )
            return self.refuse(context: context, with: refusal)
        }
        self.startupTimer?.cancel()
        context.fireChannelRead(self.wrapInboundOut(bytes))
        if rest.readableBytes > 0 { context.fireChannelRead(self.wrapInboundOut(rest)) }
        context.fireChannelReadComplete()
        context.pipeline.syncOperations.removeHandler(context: context, promise: nil)
    }

    private func refuse(context: ChannelHandlerContext, with response: ErrorResponse) {
        self.state = .finished
        self.startupTimer?.cancel()
        context.writeAndFlush(self.wrapOutboundOut(response.buffer(allocator: context.channel.allocator)))
            .assumeIsolated().whenComplete { _ in context.close(promise: nil) }
    }
}
