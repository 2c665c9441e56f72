import Logging
import MeshConfig
import NIOCore
import NIOHPACK
import NIOHTTP2
import NIOPosix

/// Decides whether a peer may open a service on this node, and where the service is. Checked on
/// the serving side against the peer's verified certificate identity.
struct ServiceAccess: Sendable {
    let node: String
    let services: [String: ServiceSettings]

    func target(service: String, peer: String) -> Result<Endpoint, ConnectRequest.Refusal> {
        guard let settings = self.services[service], let target = settings.on[self.node] else {
            return .failure(.notFound)
        }
        guard settings.allow.permits(peer) else { return .failure(.forbidden) }
        return .success(target)
    }
}

/// The first handler of a stream a peer opens: reads the CONNECT request, checks access, connects
/// to the service's local target, answers, and splices. Everything refused is answered with a
/// status and END_STREAM and logged with the peer and the reason.
final class ServiceRequestHandler: ChannelInboundHandler {
    typealias InboundIn = HTTP2Frame.FramePayload
    typealias InboundOut = HTTP2Frame.FramePayload
    typealias OutboundOut = HTTP2Frame.FramePayload

    private enum State {
        case awaitingRequest
        case connecting
        case spliced
        case refused
    }

    private let peer: String
    private let access: ServiceAccess
    private let counters: PeerCounters
    private let logger: Logger
    private let limit: StreamLimit
    private let requester: NIOLoopBoundBox<ReverseRequester?>
    private let onNote: @Sendable (PeerNote) -> Void
    private var state = State.awaitingRequest

    /// - Parameter limit: whether one more stream from this peer fits under its stream limit.
    init(
        peer: String, access: ServiceAccess, counters: PeerCounters, logger: Logger, limit: StreamLimit,
        requester: NIOLoopBoundBox<ReverseRequester?>, onNote: @escaping @Sendable (PeerNote) -> Void
    ) {
        self.requester = requester
        self.onNote = onNote
        self.peer = peer
        self.access = access
        self.counters = counters
        self.logger = logger
        self.limit = limit
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch self.state {
        case .spliced, .connecting:
            context.fireChannelRead(data)
        case .refused:
            return
        case .awaitingRequest:
            guard case .headers(let request) = self.unwrapInboundIn(data) else {
                self.refuse(context: context, .badRequest, service: "?")
                return
            }
            self.handle(request: request.headers, context: context)
        }
    }

    private func handle(request: HPACKHeaders, context: ChannelHandlerContext) {
        let service: String
        switch ConnectRequest.service(from: request) {
        case .failure(let refusal):
            self.refuse(context: context, refusal, service: "?")
            return
        case .success(let name):
            service = name
        }
        switch service {
        case ReverseStreams.controlAuthority:
            self.acceptControlStream(context: context)
            return
        case ReverseStreams.reverseAuthority:
            self.acceptReverseStream(request: request, context: context)
            return
        default:
            break
        }
        guard self.limit.admitsOneMore() else {
            self.refuse(context: context, .tooManyStreams, service: service)
            return
        }
        let target: Endpoint
        switch self.access.target(service: service, peer: self.peer) {
        case .failure(let refusal):
            self.refuse(context: context, refusal, service: service)
            return
        case .success(let endpoint):
            target = endpoint
        }

        self.state = .connecting
        let pair = Splice.makePair(tcpLoop: context.eventLoop, streamLoop: context.eventLoop, counters: self.counters)
        do {
            try context.pipeline.syncOperations.addHandler(pair.stream)
        } catch {
            self.refuse(context: context, .unreachable, service: service)
            return
        }
        let loopBound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
        let tcpHandler = pair.tcp
        LocalConnector.connect(to: target, on: context.eventLoop) { channel in
            try channel.pipeline.syncOperations.addHandler(tcpHandler)
        }.whenComplete { result in
            let (handler, context) = loopBound.value
            switch result {
            case .success:
                handler.state = .spliced
                let ok = HTTP2Frame.FramePayload.headers(.init(headers: ConnectRequest.response(status: 200)))
                context.writeAndFlush(handler.wrapOutboundOut(ok), promise: nil)
                pair.stream.announceWritable()
            case .failure(let error):
                handler.logger.warning(
                    "service target unreachable",
                    metadata: ["peer": "\(handler.peer)", "service": "\(service)", "target": "\(target)", "error": "\(error)"])
                handler.refuse(context: context, .unreachable, service: service)
            }
        }
    }

    /// The dialer's control stream: from now on this stream carries reverse-open requests.
    private func acceptControlStream(context: ChannelHandlerContext) {
        let requester = ReverseRequester(peer: self.peer, onNote: self.onNote)
        do {
            try context.pipeline.syncOperations.addHandler(requester)
        } catch {
            self.refuse(context: context, .unreachable, service: ReverseStreams.controlAuthority)
            return
        }
        self.state = .spliced
        self.requester.value = requester
        let ok = HTTP2Frame.FramePayload.headers(.init(headers: ConnectRequest.response(status: 200)))
        context.writeAndFlush(self.wrapOutboundOut(ok), promise: nil)
    }

    /// A stream the dialer opened because we asked for it: hand it to the waiting client.
    private func acceptReverseStream(request: HPACKHeaders, context: ChannelHandlerContext) {
        guard let id = request.first(name: ReverseStreams.idHeader).flatMap(UInt64.init), let requester = self.requester.value
        else {
            self.refuse(context: context, .badRequest, service: ReverseStreams.reverseAuthority)
            return
        }
        self.state = .spliced
        let ok = HTTP2Frame.FramePayload.headers(.init(headers: ConnectRequest.response(status: 200)))
        context.writeAndFlush(self.wrapOutboundOut(ok), promise: nil)
        if !requester.arrived(id: id, stream: context.channel) {
            // Nobody waits for it (the client left): end it cleanly.
            let end = HTTP2Frame.FramePayload.data(.init(data: .byteBuffer(ByteBuffer()), endStream: true))
            context.writeAndFlush(self.wrapOutboundOut(end), promise: nil)
        }
    }

    private func refuse(context: ChannelHandlerContext, _ refusal: ConnectRequest.Refusal, service: String) {
        if refusal != .unreachable {
            var metadata: Logger.Metadata = [
                "peer": "\(self.peer)", "service": "\(service)", "status": "\(refusal.rawValue)", "reason": "\(refusal)",
            ]
            if refusal == .tooManyStreams { metadata["limit"] = "\(self.limit.described)" }
            self.logger.warning("stream refused", metadata: metadata)
        }
        self.state = .refused
        var headers = ConnectRequest.response(status: refusal.rawValue)
        headers.add(name: "tm-reason", value: refusal.description)
        let answer = HTTP2Frame.FramePayload.headers(.init(headers: headers, endStream: true))
        context.writeAndFlush(self.wrapOutboundOut(answer), promise: nil)
    }
}
