import NIOCore

/// Counts resets a peer causes within a window, and says when it passed the limit: then the
/// tunnel is closed with GOAWAY ENHANCE_YOUR_CALM. Two guards use it:
/// - `TunnelStreams` counts streams a peer opens and resets before we answered them, the pattern
///   of a rapid-reset flood (CVE-2023-44487), which costs us a stream set-up each and the peer
///   nearly nothing. An honest peer resets a stream that early only when its own client gave up
///   within the same moment, which is rare: `early`.
/// - `TunnelFrameHandler` counts every RST_STREAM it receives and every stream it refuses:
///   `any` (an authenticated peer aborting many connections legitimately resets many streams, so
///   this bound is much higher).
struct RapidResetGuard {
    static let early = (limit: 200, window: TimeAmount.seconds(10))
    static let any = (limit: 20_000, window: TimeAmount.seconds(30))

    let limit: Int
    let window: TimeAmount
    private var windowStart = NIODeadline.uptimeNanoseconds(0)
    private var count = 0

    init(_ bound: (limit: Int, window: TimeAmount)) {
        self.limit = bound.limit
        self.window = bound.window
    }

    /// Counts one reset at `now`; false once the limit is passed.
    mutating func allow(now: NIODeadline) -> Bool {
        if now - self.windowStart > self.window {
            self.windowStart = now
            self.count = 0
        }
        self.count += 1
        return self.count <= self.limit
    }
}
