/// The `tunnel` block: liveness, reconnect backoff and per-peer limits.
public struct TunnelSettings: Sendable, Equatable {
    /// "ping_interval": the liveness period; a tunnel that heard nothing for one sends an HTTP/2 PING.
    public var pingInterval: Duration
    /// "dead_after": intervals in a row with nothing heard before a tunnel is torn down and redialed (>= 1).
    public var deadAfter: Int
    /// "backoff_min": the first reconnect delay ceiling.
    public var backoffMin: Duration
    /// "backoff_max": the largest reconnect delay ceiling (>= backoffMin).
    public var backoffMax: Duration
    /// "handshake_timeout": a TLS handshake that takes longer is abandoned, so silent peers hold no slot.
    public var handshakeTimeout: Duration
    /// "shutdown_grace": how long SIGTERM waits for open streams to drain.
    public var shutdownGrace: Duration
    /// "max_streams_per_peer": concurrent HTTP/2 streams allowed on one tunnel.
    public var maxStreamsPerPeer: Int
    /// "max_pending_handshakes": inbound TLS handshakes in progress at once.
    public var maxPendingHandshakes: Int
    /// "reauthenticate_before": the most a tunnel is re-handshaken ahead of the earliest `notAfter`
    /// of the certificates that authenticated it (a quarter of that certificate's lifetime when
    /// that is less), so a short-lived certificate is not due for renewal for most of its life.
    public var reauthenticateBefore: Duration

    public static let defaults = TunnelSettings()

    public init(
        pingInterval: Duration = .seconds(1),
        deadAfter: Int = 3,
        backoffMin: Duration = .milliseconds(100),
        backoffMax: Duration = .seconds(2),
        handshakeTimeout: Duration = .seconds(5),
        shutdownGrace: Duration = .seconds(10),
        maxStreamsPerPeer: Int = 16384,
        maxPendingHandshakes: Int = 256,
        reauthenticateBefore: Duration = .seconds(24 * 3600)
    ) {
        self.pingInterval = pingInterval
        self.deadAfter = deadAfter
        self.backoffMin = backoffMin
        self.backoffMax = backoffMax
        self.handshakeTimeout = handshakeTimeout
        self.shutdownGrace = shutdownGrace
        self.maxStreamsPerPeer = maxStreamsPerPeer
        self.maxPendingHandshakes = maxPendingHandshakes
        self.reauthenticateBefore = reauthenticateBefore
    }
}
