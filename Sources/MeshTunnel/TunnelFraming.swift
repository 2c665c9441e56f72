import Logging
import MeshConfig
import NIOCore

/// The HTTP/2 part of a tunnel's pipeline, between TLS and the liveness handler's successors:
/// `TunnelFrameHandler`, and `TunnelStreams` behind it (with the liveness handler between them in
/// a real tunnel). `TunnelConnection` builds every tunnel from it.
public enum TunnelFraming {
    static func frameHandler(dialer: Bool, maxStreamsPerPeer: Int) -> TunnelFrameHandler {
        TunnelFrameHandler(isDialer: dialer, limits: TunnelTuning.framing(maxStreams: maxStreamsPerPeer))
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
            Self.frameHandler(dialer: false, maxStreamsPerPeer: maxStreamsPerPeer),
            TunnelStreams(isDialer: false, serving: serving, logger: logger),
        ]
    }
}
