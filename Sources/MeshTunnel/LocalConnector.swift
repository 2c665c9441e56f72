import MeshConfig
import NIOCore
import NIOPosix

/// Connects to a local service target (TCP or Unix socket) on a given event loop, with the socket
/// options a splice needs: half-closure allowed, Nagle off.
enum LocalConnector {
    static let connectTimeout = TimeAmount.seconds(5)

    static func connect(
        to endpoint: Endpoint,
        on loop: EventLoop,
        initializer: @escaping @Sendable (Channel) throws -> Void
    ) -> EventLoopFuture<Channel> {
        let bootstrap = ClientBootstrap(group: loop)
            .connectTimeout(Self.connectTimeout)
            .channelOption(.allowRemoteHalfClosure, value: true)
            .channelOption(.recvAllocator, value: TunnelTuning.receiveAllocator)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture { try initializer(channel) }
            }
        switch endpoint {
        case .tcp(let host, let port):
            return bootstrap
                .channelOption(.tcpOption(.tcp_nodelay), value: 1)
                .connect(host: host, port: port)
        case .unix(let path):
            return bootstrap.connect(unixDomainSocketPath: path)
        }
    }
}
