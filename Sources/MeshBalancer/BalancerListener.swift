import Logging
import MeshConfig
import MeshTunnel
import NIOCore
import NIOPosix

/// One listener of one balancer on this node (`<balancer>-rw` or `<balancer>-ro`): each accepted
/// PostgreSQL connection becomes a `BalancerSession` read by a `FrontDoorHandler`.
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
        let session = BalancerSession(
            balancer: self.balancer,
            listener: self.kind,
            channel: channel,
            host: self.host,
            logger: self.logger
        )
        return FrontDoorHandler(session: session, tls: self.host.tlsContext(balancer: self.balancer), logger: self.logger)
    }
}
