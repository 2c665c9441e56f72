import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOHTTP1
import NIOPosix

/// The control API on the node's Unix socket: HTTP/1.1 + JSON, each client checked with
/// `SO_PEERCRED` against `ControlAccessPolicy` before any request is answered.
public final class ControlServer: Sendable {
    public let socketPath: String
    public let api: ControlAPI
    private let policy: ControlAccessPolicy
    private let group: EventLoopGroup
    private let logger: Logger
    private let listening = NIOLockedValueBox<(channel: Channel, inode: UInt64)?>(nil)

    /// A connection that sends nothing for this long is closed (unless a request is in progress);
    /// a refused client gets a twelfth of it to send its request and read the 403.
    private let idleTimeout: TimeAmount

    public init(
        socketPath: String,
        api: ControlAPI,
        group: EventLoopGroup,
        logger: Logger,
        policy: ControlAccessPolicy? = nil,
        idleTimeout: Duration = .seconds(60)
    ) {
        self.socketPath = socketPath
        self.idleTimeout = TimeAmount(idleTimeout)
        self.api = api
        self.group = group
        self.logger = logger
        self.policy = policy ?? ControlAccessPolicy(socketPath: socketPath)
    }

    /// Creates the socket (mode 0660) and starts accepting. Throws `ControlSocketError` naming the path.
    public func start() async throws {
        let socket = try ControlSocket.listen(path: self.socketPath)
        let api = self.api
        let policy = self.policy
        let logger = self.logger
        let idleTimeout = self.idleTimeout
        let channel: Channel
        do {
            channel = try await ServerBootstrap(group: self.group)
                .serverChannelOption(.backlog, value: 64)
                .childChannelInitializer { channel in
                    Self.initialize(channel, api: api, policy: policy, idleTimeout: idleTimeout, logger: logger)
                }
                .withBoundSocket(socket.fd)
                .get()
        } catch {
            ControlSocket.remove(path: self.socketPath, inode: socket.inode)
            throw ControlSocketError(path: self.socketPath, message: "cannot serve: \(error)")
        }
        self.listening.withLockedValue { $0 = (channel, socket.inode) }
        self.logger.info("control API listening on \(self.socketPath)")
    }

    /// Stops accepting and removes the socket file (if it is still ours). Open requests may finish.
    public func stop() async {
        guard
            let (channel, inode) = self.listening.withLockedValue({ state in
                defer { state = nil }
                return state
            })
        else {
            return
        }
        try? await channel.close()
        ControlSocket.remove(path: self.socketPath, inode: inode)
    }

    private static func initialize(
        _ channel: Channel,
        api: ControlAPI,
        policy: ControlAccessPolicy,
        idleTimeout: TimeAmount,
        logger: Logger
    ) -> EventLoopFuture<Void> {
        PeerCredentials.of(channel).flatMapError { error in
            logger.warning("control: closing a connection whose peer credentials cannot be read: \(error)")
            return channel.close().flatMap { channel.eventLoop.makeFailedFuture(error) }
        }.flatMap { peer in
            var refusal: String?
            switch policy.decide(peer) {
            case .allowed:
                logger.debug("control: client \(peer)")
            case .denied(let reason):
                logger.warning("control: refused a client with uid \(peer.uid) (pid \(peer.pid)): \(reason)")
                refusal = reason
            }
            let idle = refusal == nil ? idleTimeout : .nanoseconds(idleTimeout.nanoseconds / 12)
            return channel.eventLoop.makeCompletedFuture {
                try channel.pipeline.syncOperations.addHandler(IdleStateHandler(readTimeout: idle))
                try channel.pipeline.syncOperations.configureHTTPServerPipeline(withErrorHandling: true)
                try channel.pipeline.syncOperations.addHandler(
                    ControlHTTPHandler(
                        respond: { await api.respond(method: $0, uri: $1, body: $2) },
                        refusal: refusal,
                        maxBodyBytes: ControlAPI.maxBodyBytes
                    )
                )
            }
        }
    }
}
