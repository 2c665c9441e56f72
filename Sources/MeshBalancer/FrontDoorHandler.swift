import Logging
import MeshTunnel
import NIOCore

/// The first handler on a balancer listener's accepted connection. It reads the client's first
/// packets: answers SSLRequest and GSSENCRequest with 'N' (this hop is loopback; the tunnel encrypts
/// what leaves the node), hands a CancelRequest to `cancel` and closes, and for a StartupMessage asks
/// `route` where to go, joins the connection to that node's service (`bridge`, which adds the splice
/// at the end of the pipeline), passes the StartupMessage and anything after it on unchanged, so
/// authentication stays between client and PostgreSQL, and removes itself. A refusal or a bad
/// packet gets an ErrorResponse, then the connection is closed.
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

    private enum State {
        /// Collecting the first packets; `negotiations` counts answered SSL/GSS requests.
        case reading(buffer: ByteBuffer, negotiations: Int)
        /// Routed, refused or cancelled: whatever still arrives is not ours to read.
        case finished
    }

    private var state: State = .reading(buffer: ByteBuffer(), negotiations: 0)
    private var startupTimer: Scheduled<Void>?
    private let route: @Sendable (StartupMessage) -> Result<Route, ErrorResponse>
    private let bridge: @Sendable (Channel, Route) throws -> Void
    private let cancel: @Sendable (BackendKeyData) -> Void
    private let startupTimeout: TimeAmount
    private let logger: Logger

    /// - route: picks the node for a session, or the ErrorResponse to refuse it with.
    /// - bridge: joins the channel to the route's service (`MeshNode.bridge` in meshd).
    /// - cancel: delivers a CancelRequest to the backend that issued the key, if any.
    public init(
        route: @escaping @Sendable (StartupMessage) -> Result<Route, ErrorResponse>,
        bridge: @escaping @Sendable (Channel, Route) throws -> Void,
        cancel: @escaping @Sendable (BackendKeyData) -> Void,
        startupTimeout: TimeAmount = FrontDoorHandler.defaultStartupTimeout,
        logger: Logger
    ) {
        self.route = route
        self.bridge = bridge
        self.cancel = cancel
        self.startupTimeout = startupTimeout
        self.logger = logger
    }

    /// Bridges through `meshNode`'s tunnels.
    public convenience init(
        meshNode: MeshNode, route: @escaping @Sendable (StartupMessage) -> Result<Route, ErrorResponse>,
        cancel: @escaping @Sendable (BackendKeyData) -> Void, logger: Logger
    ) {
        self.init(
            route: route, bridge: { channel, route in try meshNode.bridge(channel, toService: route.service, on: route.node) },
            cancel: cancel, logger: logger)
    }

    public func handlerAdded(context: ChannelHandlerContext) {
        self.startupTimer = context.eventLoop.assumeIsolated().scheduleTask(in: self.startupTimeout) {
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
        self.logger.debug("front door: \(error)")
        self.state = .finished
        context.close(promise: nil)
    }

    /// Reads every complete packet in the buffer and acts on each: the one place the state moves.
    private func readPackets(context: ChannelHandlerContext) {
        while case .reading(var buffer, let negotiations) = self.state {
            // Moving the reader index does not copy: `unread` shares the storage.
            let unread = buffer
            let packet: StartupPacket
            do {
                guard case .packet(let read) = try StartupPacket.read(from: &buffer) else {
                    return self.state = .reading(buffer: buffer, negotiations: negotiations)
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
                        with: ErrorResponse(code: .protocolViolation, message: "tunnelmesh: too many SSL/GSSENC requests"))
                }
                self.state = .reading(buffer: buffer, negotiations: negotiations + 1)
                context.writeAndFlush(self.wrapOutboundOut(context.channel.allocator.buffer(string: "N")), promise: nil)

            case .cancelRequest(let key):
                // PostgreSQL answers a CancelRequest with nothing and closes; so do we.
                self.state = .finished
                self.cancel(key)
                context.close(promise: nil)

            case .startup(let message):
                self.state = .finished
                let startupBytes = unread.getSlice(at: unread.readerIndex, length: buffer.readerIndex - unread.readerIndex)!
                self.pass(message, bytes: startupBytes, rest: buffer, context: context)
            }
        }
    }

    /// Routes the session and hands the StartupMessage and what followed it to the splice.
    private func pass(_ message: StartupMessage, bytes: ByteBuffer, rest: ByteBuffer, context: ChannelHandlerContext) {
        let route: Route
        switch self.route(message) {
        case .failure(let refusal):
            self.logger.info("front door: refused \(message.user ?? "?")@\(message.database ?? "?"): \(refusal.message)")
            return self.refuse(context: context, with: refusal)
        case .success(let chosen):
            route = chosen
        }
        do {
            try self.bridge(context.channel, route)
        } catch {
            self.logger.warning("front door: cannot reach \(route.service)@\(route.node): \(error)")
            return self.refuse(
                context: context,
                with: ErrorResponse(
                    code: .connectionFailure, message: "tunnelmesh: cannot reach \"\(route.service)\" on \(route.node): \(error)"))
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
