import Atomics
import Foundation
import Logging
import MeshConfig
import MeshTLS
import NIOCore
import NIOPosix

/// The node's mesh port: accepts peers' tunnels, lets TLS verify them, and hands each verified
/// tunnel to the link of the peer it belongs to. Connections that fail TLS are logged with the
/// reason and closed (those warnings are rate-limited: anyone can cause them). At most
/// `max_pending_handshakes` connections may be mid-handshake at once; a new one beyond that evicts
/// the oldest silent one (see `PendingHandshakes`), and `handshake_timeout` closes the rest, so a
/// flood of silent connections neither exhausts memory nor shuts an honest peer out.
final class TunnelListener: Sendable {
    private let node: String
    private let settings: TunnelSettings
    private let events: TunnelEvents
    private let logger: Logger
    private let pending: PendingHandshakes

    init(node: String, settings: TunnelSettings, events: TunnelEvents, logger: Logger) {
        self.node = node
        self.settings = settings
        self.events = events
        self.logger = logger
        self.pending = PendingHandshakes(limit: settings.maxPendingHandshakes)
    }

    /// Starts accepting on `endpoint` (or on an already-bound socket passed by systemd).
    func bind(
        group: EventLoopGroup,
        socket: ListenSocket,
        tls: @escaping @Sendable () -> TLSContext,
        policy: @escaping @Sendable () -> PeerPolicy,
        serving: TunnelConnection.Serving,
        link: @escaping @Sendable (String) -> PeerLink?
    ) -> EventLoopFuture<Channel> {
        let warnings = RateLimitedWarnings(logger: self.logger, loop: group.next(), subject: "rejected connections")
        let bootstrap = ServerBootstrap(group: group)
            .serverChannelOption(.backlog, value: 1024)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(.tcpOption(.tcp_nodelay), value: 1)
            .childChannelOption(.recvAllocator, value: TunnelTuning.receiveAllocator)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try self.configure(
                        channel,
                        tls: tls,
                        policy: policy,
                        serving: serving,
                        link: link,
                        warnings: warnings
                    )
                }
            }
        return socket.open(bootstrap)
    }

    private func configure(
        _ channel: Channel,
        tls: @Sendable () -> TLSContext,
        policy: @Sendable () -> PeerPolicy,
        serving: TunnelConnection.Serving,
        link: @escaping @Sendable (String) -> PeerLink?,
        warnings: RateLimitedWarnings
    ) throws {
        let remote = channel.remoteAddress.map { "\($0)" } ?? "?"
        let acceptedAt = NIODeadline.now()
        let evicted = ManagedAtomic<Bool>(false)
        let pending = self.pending
        let (ticket, _) = pending.admit {
            evicted.store(true, ordering: .relaxed)
            channel.close(promise: nil)
        }
        let settle: @Sendable () -> Void = { pending.settle(ticket) }
        // A backstop: the slot is freed however the channel ends, even if the pipeline never got built.
        channel.closeFuture.whenComplete { _ in settle() }
        try channel.pipeline.syncOperations.addHandler(FirstBytesWatcher { pending.heard(ticket) })
        let accepted = ManagedAtomic<Bool>(false)
        let node = self.node
        let logger = self.logger
        let limit = pending.limit
        let tunnelEvents = self.events
        let events = TunnelConnection.Events(
            up: { connection, completed in
                settle()
                let peer = completed.peer.node
                guard peer < node, let owner = link(peer) else {
                    logger.warning(
                        "rejected tunnel from \(peer): the node whose name sorts lower dials, so \(node) dials \(peer)",
                        metadata: ["remote": "\(remote)"]
                    )
                    connection.close()
                    return
                }
                accepted.store(true, ordering: .relaxed)
                owner.tunnelUp(connection, completed)
            },
            closed: { connection, error in
                settle()
                if accepted.load(ordering: .relaxed) {
                    guard case .some(let peer) = connection.peerName, let owner = link(peer) else { return }
                    owner.tunnelClosed(connection, error)
                } else {
                    let cause: Error? =
                        if evicted.load(ordering: .relaxed) {
                            TLSHandshakeError(
                                reason: .evicted,
                                detail: "closed after \((NIODeadline.now() - acceptedAt).nanoseconds / 1_000_000) ms "
                                    + "without a complete handshake: all \(limit) handshake slots "
                                    + "(tunnel.max_pending_handshakes) were taken and a newer connection needed one"
                            )
                        } else {
                            error
                        }
                    tunnelEvents.handshakeFailed(peer: nil, error: cause)
                    let kind = (cause as? TLSHandshakeError)?.reason.rawValue ?? HandshakeFailureReason.other.rawValue
                    warnings.warn(
                        kind: kind,
                        "rejected connection: \(cause.map { "\($0)" } ?? "closed during handshake")",
                        metadata: ["remote": "\(remote)"]
                    )
                }
            },
            rtt: { connection, rtt in
                if let peer = connection.peerName { link(peer)?.measured(rtt: rtt) }
            }
        )
        _ = try TunnelConnection.configure(
            channel: channel,
            mode: .server,
            tls: tls(),
            policy: policy(),
            settings: self.settings,
            serving: serving,
            events: events,
            logger: self.logger
        )
    }
}

/// Tells the listener a connection has sent its first bytes, then leaves the pipeline.
private final class FirstBytesWatcher: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer

    private let onFirstBytes: () -> Void

    init(onFirstBytes: @escaping () -> Void) {
        self.onFirstBytes = onFirstBytes
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        self.onFirstBytes()
        context.fireChannelRead(data)
        context.pipeline.syncOperations.removeHandler(context: context, promise: nil)
    }
}
