import Atomics
import Foundation
import Logging
import MeshConfig
import MeshTLS
import NIOCore
import NIOPosix

/// The node's mesh port: accepts peers' tunnels, lets TLS verify them, and hands each verified
/// tunnel to the link of the peer it belongs to. Connections that fail TLS are logged with the
/// reason and closed; at most `max_pending_handshakes` may be mid-handshake at once, so a flood of
/// silent connections cannot crowd out an honest peer for longer than the handshake timeout.
final class TunnelListener: Sendable {
    private let node: String
    private let settings: TunnelSettings
    private let events: TunnelEvents
    private let logger: Logger
    private let pending = ManagedAtomic<Int>(0)

    init(node: String, settings: TunnelSettings, events: TunnelEvents, logger: Logger) {
        self.node = node
        self.settings = settings
        self.events = events
        self.logger = logger
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
        let bootstrap = ServerBootstrap(group: group)
            .serverChannelOption(.backlog, value: 1024)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(.tcpOption(.tcp_nodelay), value: 1)
            .childChannelOption(.recvAllocator, value: TunnelTuning.receiveAllocator)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try self.configure(channel, tls: tls, policy: policy, serving: serving, link: link)
                }
            }
        return socket.open(bootstrap)
    }

    private func configure(
        _ channel: Channel, tls: @Sendable () -> TLSContext, policy: @Sendable () -> PeerPolicy,
        serving: TunnelConnection.Serving,
        link: @escaping @Sendable (String) -> PeerLink?
    ) throws {
        let remote = channel.remoteAddress.map { "\($0)" } ?? "?"
        let inFlight = self.pending.wrappingIncrementThenLoad(ordering: .relaxed)
        guard inFlight <= self.settings.maxPendingHandshakes else {
            self.pending.wrappingDecrement(ordering: .relaxed)
            self.logger.warning(
                "too many pending handshakes, dropping connection",
                metadata: ["remote": "\(remote)", "limit": "\(self.settings.maxPendingHandshakes)"])
            throw ChannelError.inappropriateOperationForState
        }
        let settled = ManagedAtomic<Bool>(false)
        let settle: @Sendable () -> Void = {
            if settled.compareExchange(expected: false, desired: true, ordering: .relaxed).exchanged {
                self.pending.wrappingDecrement(ordering: .relaxed)
            }
        }
        let accepted = ManagedAtomic<Bool>(false)
        let node = self.node
        let logger = self.logger
        let tunnelEvents = self.events
        let events = TunnelConnection.Events(
            up: { connection, completed in
                settle()
                let peer = completed.peer.node
                guard peer < node, let owner = link(peer) else {
                    logger.warning(
                        "rejected tunnel from \(peer): the node whose name sorts lower dials, so \(node) dials \(peer)",
                        metadata: ["remote": "\(remote)"])
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
                    tunnelEvents.handshakeFailed(peer: nil, error: error)
                    logger.warning(
                        "rejected connection: \(error.map { "\($0)" } ?? "closed during handshake")",
                        metadata: ["remote": "\(remote)"])
                }
            },
            rtt: { connection, rtt in
                if let peer = connection.peerName { link(peer)?.measured(rtt: rtt) }
            })
        _ = try TunnelConnection.configure(
            channel: channel, mode: .server, tls: tls(), policy: policy(), settings: self.settings,
            serving: serving, events: events, logger: self.logger)
    }
}
