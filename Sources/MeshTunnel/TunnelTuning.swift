import NIOCore

/// HTTP/2 settings for tunnels. Windows are credit, not memory: an idle stream costs nothing for its
/// window, and a busy one buffers at most its window.
///
/// `TunnelStreams` grants all credit itself. Stream credit goes back once bytes reached the local
/// socket, a quarter window at a time; connection credit is topped up from the frame handler's count
/// of the connection window with one grant in flight, so it cannot over-credit the way swift-nio-http2's
/// multiplexer did (a buffered WINDOW_UPDATE not yet counted, granted again by the next frame:
/// with a 16 MiB target and 1,000 streams it pushed the peer's window past 2^31-1, which had
/// forced a 1 MiB connection window).
enum TunnelTuning {
    static let maxFrameSize = 1 << 20
    static let streamWindow = 4 << 20
    /// Stream credit is given back in batches of this many bytes (a WINDOW_UPDATE per batch).
    static let streamCreditBatch = streamWindow / 4
    static let connectionWindow = 16 << 20
    /// Socket reads of up to 1 MiB (NIO's default stops at 64 KiB): fewer reads and bigger TLS
    /// batches under bulk load; small reads still start small.
    static var receiveAllocator: AdaptiveRecvByteBufferAllocator {
        AdaptiveRecvByteBufferAllocator(minimum: 1024, initial: 64 << 10, maximum: 1 << 20)
    }

    /// Reads on a stream's local socket (a forward's client, the connection to a service) start at
    /// 2 KiB: NIO keeps a channel's receive buffer for its next read, so the first buffer's size is
    /// what every open stream holds, per side, once it has carried a byte. Starting at 64 KiB made
    /// 10,000 idle streams cost 69 KiB each on both nodes (scripts/bench/scale.sh). A bulk stream
    /// still grows to 1 MiB reads, doubling on every full read.
    static var streamReceiveAllocator: AdaptiveRecvByteBufferAllocator {
        AdaptiveRecvByteBufferAllocator(minimum: 1024, initial: 2 << 10, maximum: 1 << 20)
    }

    /// The SETTINGS_MAX_CONCURRENT_STREAMS a node advertises: twice `max_streams_per_peer`. The
    /// limit itself is enforced by the serving node (`StreamLimit`: a 429 refusal the client sees as
    /// a reset, and a log line naming the peer and the limit). Were the setting the limit, stream
    /// limit+1 would instead meet the frame handler's bare REFUSED_STREAM, with no line saying why
    /// (and an older meshd's HTTP/2 stack queued it until another closed, its client hanging).
    /// The headroom covers refused streams that are still closing.
    static func advertisedMaxStreams(limit: Int) -> Int {
        Swift.min(limit, Int(Int32.max) / 2) * 2
    }

    /// When the tunnel's socket reports unwritable and writable again. With NIO's default marks
    /// (32/64 KiB) a bulk stream flipped it on nearly every flush, and each flip pauses or resumes
    /// streams (`TunnelStreams.channelWritabilityChanged`); what these marks let queue is bounded by
    /// the high mark, per tunnel, and only under load.
    static let tunnelWriteWaterMark = ChannelOptions.Types.WriteBufferWaterMark(low: 1 << 20, high: 4 << 20)

    static func framing(maxStreams: Int) -> TunnelFrameHandler.Limits {
        TunnelFrameHandler.Limits(
            maxConcurrentStreams: advertisedMaxStreams(limit: maxStreams),
            streamWindow: streamWindow,
            maxFrameSize: maxFrameSize,
            maxHeaderListSize: 16 << 10,
            // Empty DATA frames without END_STREAM carry nothing and an honest peer sends none
            // (a stream's end is an empty frame *with* END_STREAM, which does not count).
            maxSequentialEmptyDataFrames: 1024
        )
    }
}
