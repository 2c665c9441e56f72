import Logging
import MeshConfig
import NIOCore
import NIOHTTP2

/// The HTTP/2 part of a tunnel's pipeline, between TLS and the liveness handler's successors:
/// `NIOHTTP2Handler` with no stream multiplexer, and `TunnelStreams` behind it (with the liveness
/// handler between them in a real tunnel). `TunnelConnection` builds every tunnel from it.
public enum TunnelFraming {
    static func http2Handler(dialer: Bool, maxStreamsPerPeer: Int) -> NIOHTTP2Handler {
        NIOHTTP2Handler(
            mode: dialer ? .client : .server,
            connectionConfiguration: TunnelTuning.connection(maxStreams: maxStreamsPerPeer),
            streamConfiguration: TunnelTuning.stream
        )
    }

    /// The accepting side of a tunnel as a peer's frames reach it, serving `services` as `node`
    /// does, for the fuzz targets (Tests/MeshFuzzTargets): feed it the peer's plaintext (after a
    /// `TLSHandshakeCompleted` naming the peer) and it answers as meshd would, with no TLS and no
    /// liveness timer in the way.
    public static func acceptingSide(
        node: String,
        services: [String: ServiceSettings],
        maxStreamsPerPeer: Int,
        logger: Logger
    ) -> [ChannelHandler] {
        let counters = PeerCounters()
        let serving = TunnelConnection.Serving(
            access: { ServiceAccess(node: node, services: services) },
            peerState: { _ in (counters, StreamLimit(maximum: maxStreamsPerPeer, counters: counters)) },
            note: { _, _ in }
        )
        return [
            Self.http2Handler(dialer: false, maxStreamsPerPeer: maxStreamsPerPeer),
            TunnelStreams(isDialer: false, serving: serving, logger: logger),
        ]
    }
}
