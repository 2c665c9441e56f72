import Logging
import MeshConfig
import MeshTunnel
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix

/// One listener of one balancer on this node (`<balancer>-rw` or `<balancer>-ro`): each accepted
/// PostgreSQL connection gets a `FrontDoorHandler` whose route, bridge and cancel closures are
/// answered by the `BalancerHost`, with the connection's count lease kept for its lifetime.
struct BalancerListener: Sendable {
    let balancer: String
    let kind: ListenerKind
    let endpoint: Endpoint
    let host: BalancerHost
    let logger: Logger

    /// The socket-activation name (README, "Units"): `<balancer>-rw` or `<balancer>-ro`.
    var name: String { "\(self.balancer)-\(self.kind.rawValue)" }

    func bind(socket: ListenSocket, group: EventLoopGroup) -> EventLoopFuture<Channel> {
        // Sessions are accepted on the loop of the tunnels they are routed through (see
        // `MeshNode.balancerLoop`), so their messages never hop threads.
        var bootstrap = ServerBootstrap(group: group, childGroup: self.host.sessionLoop)
            .serverChannelOption(.backlog, value: 1024)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(.allowRemoteHalfClosure, value: true)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(self.frontDoor(for: channel))
                }
            }
        if case .tcp = self.endpoint {
            bootstrap = bootstrap.childChannelOption(.tcpOption(.tcp_nodelay), value: 1)
        }
        return socket.open(bootstrap)
    }

    private func frontDoor(for channel: Channel) -> FrontDoorHandler {
        let host = self.host
        let balancer = self.balancer
        let kind = self.kind
        // The node this connection was counted against, from routing until the channel closes.
        let lease = NIOLockedValueBox<ConnectionCounts.Lease?>(nil)
        channel.closeFuture.whenComplete { _ in
            if let counted = lease.withLockedValue({ $0 }) { host.counts.close(counted) }
        }
        return FrontDoorHandler(
            route: { _ in
                host.route(balancer: balancer, listener: kind).map { chosen in
                    lease.withLockedValue { $0 = chosen.lease }
                    return (service: chosen.service, node: chosen.lease.node)
                }
            },
            bridge: { channel, route in
                try host.bridge(channel, balancer: balancer, listener: kind, service: route.service, node: route.node)
            },
            cancel: { key in host.cancel(key) },
            tls: host.tlsContext(balancer: balancer),
            logger: self.logger)
    }
}
