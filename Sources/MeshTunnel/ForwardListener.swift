import Logging
import MeshConfig
import NIOCore
import NIOPosix

/// A local listener that carries each accepted connection to `service@node` through the tunnel to
/// that node. When the tunnel is down the client is reset at once rather than left hanging; while
/// it is still coming up (just after a restart on sockets systemd held) the client waits for it, at
/// most `waitLimit`, reading nothing, so its bytes stay queued in the kernel.
struct ForwardListener: Sendable {
    let forward: ForwardSettings
    let events: TunnelEvents
    let waitLimit: TimeAmount
    let logger: Logger

    func bind(group: EventLoopGroup, socket: ListenSocket, link: PeerLink) -> EventLoopFuture<Channel> {
        // Accepted connections live on the link's event loop, where the tunnel it dials lives too,
        // so a splice never hops threads (a hop costs a wake-up on every round trip).
        // A client of a clustered program retries a dead member many times a second (etcd's peers
        // about 20): one line per refusal would bury the log.
        let refusals = RateLimitedWarnings(
            logger: self.logger,
            loop: link.eventLoop,
            subject: "clients of forward \(self.forward.listenerName) reset",
            level: .info
        )
        let bootstrap = ServerBootstrap(group: group, childGroup: link.eventLoop)
            .serverChannelOption(.backlog, value: 1024)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(.allowRemoteHalfClosure, value: true)
            .childChannelOption(.recvAllocator, value: TunnelTuning.streamReceiveAllocator)
            .childChannelInitializer { [refusals] channel in
                self.accept(channel, link: link, refusals: refusals)
            }
        if case .tcp = self.forward.listen {
            return socket.open(bootstrap.childChannelOption(.tcpOption(.tcp_nodelay), value: 1))
        }
        return socket.open(bootstrap)
    }

    /// The child channel is registered (and starts reading) only once this future completes.
    private func accept(_ channel: Channel, link: PeerLink, refusals: RateLimitedWarnings) -> EventLoopFuture<Void> {
        let ready =
            link.connection.map { channel.eventLoop.makeSucceededFuture($0) }
            ?? link.connection(within: self.waitLimit).hop(to: channel.eventLoop)
        return ready.flatMapThrowing { tunnel in
            try StreamBridge.bridge(
                channel,
                to: self.forward.service,
                over: tunnel,
                link: link,
                events: self.events,
                logger: self.logger
            )
        }.flatMapErrorThrowing { error in
            refusals.warn(kind: "tunnel down", "forward \(self.forward.listenerName): tunnel to \(link.peer) is down, resetting client")
            self.events.stream(peer: link.peer, service: self.forward.service, result: .failed)
            TCPReset.reset(channel)
        }
    }
}
