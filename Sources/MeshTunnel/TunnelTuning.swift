import NIOHTTP2

/// HTTP/2 settings for tunnels. Measured on this project's 2-core machine (DESIGN.md): one stream
/// carries 5.4–6.7 GB/s with 1 MiB frames, a 4 MiB stream window and a 16 MiB connection window,
/// but only ~530 MB/s with HTTP/2's 64 KiB defaults. Windows are credit, not memory: an idle stream
/// costs nothing for its window, and a busy one buffers at most its window.
enum TunnelTuning {
    static let maxFrameSize = 1 << 20
    static let streamWindow = 4 << 20
    static let connectionWindow = 16 << 20
    /// How many streams a tunnel may buffer for writing before the stream channel reports unwritable.
    static let streamHighWatermark = 1 << 20
    static let streamLowWatermark = 256 << 10
    /// Resets a peer may send per 30 s before NIO's rapid-reset guard (CVE-2023-44487) kills the
    /// tunnel. Peers are authenticated mesh nodes and a client aborting many connections legitimately
    /// makes its node reset many streams, so the bound is higher than NIO's default of 200.
    static let resetsPer30s = 20_000

    static func connection(maxStreams: Int) -> NIOHTTP2Handler.ConnectionConfiguration {
        var configuration = NIOHTTP2Handler.ConnectionConfiguration()
        configuration.initialSettings = [
            HTTP2Setting(parameter: .maxConcurrentStreams, value: maxStreams),
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
