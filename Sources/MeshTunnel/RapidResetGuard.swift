import NIOCore

/// Counts streams a peer opens and resets before we answered them: the pattern of a rapid-reset
/// flood (CVE-2023-44487), which costs us a stream set-up each and the peer nearly nothing. An
/// honest peer resets a stream that early only when its own client gave up within the same
/// moment, which is rare; past `limit` within `window` the tunnel is closed with GOAWAY
/// ENHANCE_YOUR_CALM. Resets of answered streams are NIO's to count (`TunnelTuning.resetsPer30s`).
struct RapidResetGuard {
    static let limit = 200
    static let window = TimeAmount.seconds(10)

    private var windowStart = NIODeadline.uptimeNanoseconds(0)
    private var count = 0

    /// Counts one early reset at `now`; false once the limit is passed.
    mutating func allow(now: NIODeadline) -> Bool {
        if now - self.windowStart > Self.window {
            self.windowStart = now
            self.count = 0
        }
        self.count += 1
        return self.count <= Self.limit
    }
}
