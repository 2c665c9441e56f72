import Logging
import NIOCore

/// Joins a local connection to a new stream to a service on a tunnel's peer and counts the
/// outcome; shared by forwards and the balancer (through `MeshNode.bridge`).
enum StreamBridge {
    /// `opened` hears whether the stream opened; on a failure it gets the channel back, still
    /// open, to answer and close. Without it a failed channel is reset.
    static func bridge(
        _ channel: Channel,
        to service: String,
        over tunnel: TunnelConnection,
        link: PeerLink,
        events: TunnelEvents,
        logger: Logger,
        opened reportOpened: (@Sendable (Channel, Result<Void, Error>) -> Void)? = nil
    ) throws {
        let peer = link.peer
        try tunnel.openStream(service: service, for: channel) { result in
            switch result {
            case .success:
                events.stream(peer: peer, service: service, result: .opened)
                reportOpened?(channel, .success(()))
            case .failure(let error):
                events.stream(peer: peer, service: service, result: error is StreamRefusedError ? .refused : .failed)
                logger.warning("stream to \(service)@\(peer) failed: \(error)")
                if let reportOpened { reportOpened(channel, .failure(error)) } else { TCPReset.reset(channel) }
            }
        }
    }
}
