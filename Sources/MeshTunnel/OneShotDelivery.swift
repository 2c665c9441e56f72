import MeshConfig
import NIOCore

/// Sends a few bytes to a service on a stream of their own and waits for the service to close it:
/// a PostgreSQL CancelRequest is such an exchange (it names its session by key and gets no answer).
enum OneShotDelivery {
    /// A service that neither answers nor closes within this is left; the stream is closed.
    static let timeout = TimeAmount.seconds(5)

    static func deliver(
        _ bytes: ByteBuffer,
        to service: String,
        over tunnel: TunnelConnection,
        link: PeerLink,
        events: TunnelEvents
    ) -> EventLoopFuture<Void> {
        let done = tunnel.deliver(bytes, toService: service, timeout: Self.timeout)
        done.whenComplete { result in
            let outcome: TunnelEvents.StreamResult
            switch result {
            case .success: outcome = .opened
            case .failure(let error): outcome = error is StreamRefusedError ? .refused : .failed
            }
            events.stream(peer: link.peer, service: service, result: outcome)
        }
        return done
    }

    /// The same to a service on this node: write, half-close, wait for the service's close.
    static func deliver(_ bytes: ByteBuffer, toLocal target: Endpoint, on loop: EventLoop) -> EventLoopFuture<Void> {
        LocalConnector.connect(to: target, on: loop) { _ in }.flatMap { channel in
            channel.writeAndFlush(bytes).whenSuccess { channel.close(mode: .output, promise: nil) }
            let deadline = channel.eventLoop.scheduleTask(in: Self.timeout) { channel.close(promise: nil) }
            return channel.closeFuture.always { _ in deadline.cancel() }
        }
    }
}
