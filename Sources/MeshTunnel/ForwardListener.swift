import Logging
import MeshConfig
import NIOCore
import NIOPosix

/// A local listener that carries each accepted connection to `service@node` through the tunnel to
/// that node. When the tunnel is down the client is reset at once rather than left hanging.
struct ForwardListener: Sendable {
    let forward: ForwardSettings
    let logger: Logger

    func bind(group: EventLoopGroup, link: PeerLink) -> EventLoopFuture<Channel> {
        let bootstrap = ServerBootstrap(group: group)
            .serverChannelOption(.backlog, value: 1024)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(.allowRemoteHalfClosure, value: true)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try self.accept(channel, link: link)
                }
            }
        switch self.forward.listen {
        case .tcp(let host, let port):
            return bootstrap
                .childChannelOption(.tcpOption(.tcp_nodelay), value: 1)
                .bind(host: host, port: port)
        case .unix(let path):
            return bootstrap.bind(unixDomainSocketPath: path, cleanupExistingSocketFile: true)
        }
    }

    private func accept(_ channel: Channel, link: PeerLink) throws {
        // Only the HTTP/2 client (the dialer) may open streams; meshd refuses such forwards at
        // startup, and this keeps a stray one from breaking the tunnel with a protocol error.
        guard link.dialer, let tunnel = link.connection else {
            self.logger.info(
                "forward \(self.forward.listenerName): tunnel to \(link.peer) is down, resetting client")
            TCPReset.reset(channel)
            return
        }
        try StreamBridge.bridge(channel, to: self.forward.service, over: tunnel, link: link, logger: self.logger)
    }
}

/// Joins a local connection to a new CONNECT stream; shared by forwards and, later, the balancer.
public enum StreamBridge {
    static func bridge(
        _ channel: Channel, to service: String, over tunnel: TunnelConnection, link: PeerLink, logger: Logger
    ) throws {
        let pair = Splice.makePair(tcpLoop: channel.eventLoop, streamLoop: tunnel.channel.eventLoop, counters: link.counters)
        try channel.pipeline.syncOperations.addHandler(pair.tcp)
        let streamSide = pair.stream
        tunnel.openStream(
            service: service, peer: link.peer,
            onAccepted: { streamSide.announceWritable() },
            initializer: { stream in try stream.pipeline.syncOperations.addHandler(streamSide) }
        ).whenFailure { error in
            logger.warning("stream to \(service)@\(link.peer) failed: \(error)")
            TCPReset.reset(channel)
        }
    }
}
