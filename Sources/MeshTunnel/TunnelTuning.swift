import NIOCore
import NIOHTTP2

/// HTTP/2 settings for tunnels. Windows are credit, not memory: an idle stream costs nothing for its
/// window, and a busy one buffers at most its window.
///
/// The connection window is 1 MiB, not the 16 MiB DESIGN.md measured in plaintext. Measured through
/// TLS here (release build, 1 GiB, one stream): 64 KiB → ~300 MB/s, 1 MiB → ~700 MB/s, 16 MiB →
/// ~400 MB/s. And NIO (swift-nio-http2 1.46) over-credits the connection window when one read
/// delivers many DATA frames: each frame's buffered window event sends its own WINDOW_UPDATE from a
/// stale snapshot. With a 16 MiB target, 1,000 streams pushed the peer's window past 2^31-1 within
/// seconds and the tunnel died with FLOW_CONTROL_ERROR; the overshoot per frame scales with the
/// target, so 1 MiB keeps it far from the limit (about 4,000 small frames in one read would be
/// needed, against a few hundred seen).
enum TunnelTuning {
    static let maxFrameSize = 1 << 20
    static let streamWindow = 4 << 20
    static let connectionWindow = 1 << 20
    /// How many streams a tunnel may buffer for writing before the stream channel reports unwritable.
    static let streamHighWatermark = 1 << 20
    static let streamLowWatermark = 256 << 10
    /// Resets a peer may send per 30 s before NIO's rapid-reset guard (CVE-2023-44487) kills the
    /// tunnel. Peers are authenticated mesh nodes and a client aborting many connections legitimately
    /// makes its node reset many streams, so the bound is higher than NIO's default of 200.
    static let resetsPer30s = 20_000

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
    /// a reset, and a log line naming the peer and the limit). Were the setting the limit, the
    /// opening node's HTTP/2 stack would instead queue stream limit+1 until another closed: its client
    /// would hang with no error, and the queue would grow with every connection the client opened.
    /// The headroom covers refused streams that are still closing.
    static func advertisedMaxStreams(limit: Int) -> Int {
        Swift.min(limit, Int(Int32.max) / 2) * 2
    }

    /// When the tunnel's socket reports unwritable and writable again. NIO HTTP/2 tells every open
    /// stream of each change (`propagateChannelWritabilityChanged`), so with NIO's default marks
    /// (32/64 KiB) a bulk stream flipped it on nearly every flush and paid for all idle streams
    /// each time: 4 MiB echoed took 0.06 s beside 200 idle streams, 0.85 s beside 3,000 and 5 s
    /// beside 10,000 (scripts/bench/scale.sh); with these marks, 0.07 s beside 10,000. What they
    /// let queue is bounded by the high mark, per tunnel, and only under load.
    static let tunnelWriteWaterMark = ChannelOptions.Types.WriteBufferWaterMark(low: 1 << 20, high: 4 << 20)

    static func connection(maxStreams: Int) -> NIOHTTP2Handler.ConnectionConfiguration {
        var configuration = NIOHTTP2Handler.ConnectionConfiguration()
        configuration.initialSettings = [
            HTTP2Setting(parameter: .maxConcurrentStreams, value: advertisedMaxStreams(limit: maxStreams)),
            HTTP2Setting(parameter: .initialWindowSize, value: streamWindow),
            HTTP2Setting(parameter: .maxFrameSize, value: maxFrameSize),
            HTTP2Setting(parameter: .maxHeaderListSize, value: 16 << 10),
            HTTP2Setting(parameter: .enablePush, value: 0),
        ]
        configuration.targetWindowSize = connectionWindow
        configuration.maximumRecentlyResetStreams = Swift.max(32, maxStreams)
        // Every stream ends with an empty END_STREAM DATA frame when its TCP side half-closes, so
        // many streams closing together send many empty frames in a row; NIO's default guard (1)
        // would take that for a flood and kill the tunnel.
        configuration.maximumSequentialEmptyDataFrames = Swift.max(1024, maxStreams * 2)
        return configuration
    }

    static var stream: NIOHTTP2Handler.StreamConfiguration {
        var configuration = NIOHTTP2Handler.StreamConfiguration()
        configuration.targetWindowSize = streamWindow
        configuration.outboundBufferSizeHighWatermark = streamHighWatermark
        configuration.outboundBufferSizeLowWatermark = streamLowWatermark
        configuration.streamResetFrameRateLimit.maximumCount = resetsPer30s
        configuration.streamErrorRateLimit.maximumCount = resetsPer30s
        return configuration
    }
}
