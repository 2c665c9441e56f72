import Foundation
import MeshTLS
import NIOCore
import NIOHTTP2

/// Keeps the tunnel's liveness by `LivenessState`'s rule: a PING only after an interval in which
/// nothing came from the peer, and the tunnel closed after `deadAfter` such intervals in a row.
/// This catches what TCP alone does not: a peer frozen by SIGSTOP, a dropped route, a NAT that
/// forgot the flow. Anything read from the peer proves it alive, not just a PING reply: a peer
/// busy sending a burst of data may answer a PING late, and must not be declared dead for it (seen
/// with 1,000 streams on a loaded machine). Answered PINGs give the RTT `meshctl peers` shows; an
/// end that needs no PING for liveness still sends one every `rttRefreshIntervals` to keep it
/// fresh. On-demand PINGs from `meshctl ping` share the same path.
///
/// Ticks fall on a grid, multiples of `interval` on the wall clock, not `interval` after each
/// tunnel came up: every tunnel of a node then ticks at the same instants, so an event loop wakes
/// once per interval for all its tunnels instead of once per tunnel, and its PINGs go out, and are
/// answered, in one burst. The wall clock rather than the monotonic one because NTP keeps the
/// nodes' wall clocks within milliseconds of each other, so the whole mesh ticks together and the
/// PINGs a node gets from its peers arrive in one burst too. Timer and PING wake-ups were most of
/// an idle node's CPU (BENCHMARKS.md, "Idle CPU"). The wall clock only places the ticks: a tick
/// never follows the previous one by less than half an interval, so a stepped clock or a late
/// tick cannot crowd two ticks together (at worst one interval is half an interval longer).
///
/// Inbound only: it writes its PINGs from its own context, and the frames `TunnelStreams` writes
/// skip it on their way down.
final class LivenessHandler: ChannelInboundHandler {
    typealias InboundIn = HTTP2Frame
    typealias InboundOut = HTTP2Frame
    typealias OutboundOut = HTTP2Frame

    private let interval: TimeAmount
    private let deadAfter: Int
    private let onRTT: (TimeAmount) -> Void
    /// Nanoseconds since the epoch, which place the tick grid.
    private let wallClock: () -> Int64
    /// The next tick; nil before TLS is up and once the tunnel closed or was declared dead.
    private var timer: Scheduled<Void>?
    /// PINGs in flight: payload → when it was sent, and the promise of an on-demand ping.
    private(set) var outstanding: [UInt64: (sent: NIODeadline, promise: EventLoopPromise<TimeAmount>?)] = [:]
    private var nextPayload: UInt64 = 1
    private var state: LivenessState
    /// Whether the peer sent anything since the last tick.
    private var heard = false
    /// When this end last sent a PING of any kind.
    private var lastPing: NIODeadline?

    /// A busy tunnel (or an acceptor hearing the dialer's PINGs) needs no PING for liveness, but
    /// `meshctl peers` shows its round trip: one PING per this many intervals keeps it fresh, at a
    /// tenth of an exchange per interval.
    static let rttRefreshIntervals: Int64 = 10

    /// - asksFirst: true on the dialing end (see `LivenessState`).
    /// - wallClock: the clock that places the ticks (tests pass their simulated one).
    init(
        interval: TimeAmount,
        deadAfter: Int,
        asksFirst: Bool = true,
        wallClock: @escaping () -> Int64 = LivenessHandler.systemWallClock,
        onRTT: @escaping (TimeAmount) -> Void
    ) {
        self.interval = interval
        self.deadAfter = deadAfter
        self.wallClock = wallClock
        self.onRTT = onRTT
        self.state = LivenessState(deadAfter: deadAfter, asksFirst: asksFirst)
    }

    /// PINGs start once TLS is up, not when TCP is: a PING written during the handshake is only
    /// held by the TLS handler, so counting it as missed would close a slow (or silent) handshake
    /// after `dead_after` pings with "no PING reply" instead of letting `handshake_timeout` decide,
    /// with its own reason.
    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        // Checked only until started: a failed dynamic cast on every HTTP/2 window event costs.
        if self.timer == nil, event is TLSHandshakeCompleted { self.start(context: context) }
        context.fireUserInboundEventTriggered(event)
    }

    func channelInactive(context: ChannelHandlerContext) {
        self.timer?.cancel()
        self.timer = nil
        for (_, entry) in self.outstanding {
            entry.promise?.fail(ChannelError.ioOnClosedChannel)
        }
        self.outstanding.removeAll()
        context.fireChannelInactive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let frame = self.unwrapInboundIn(data)
        if case .ping(let ping, ack: true) = frame.payload {
            // Proof of life comes from `heard` (channelReadComplete), late answers included.
            guard let entry = self.outstanding.removeValue(forKey: ping.integer) else { return }
            let rtt = context.eventLoop.now - entry.sent
            // Older automatic PINGs are answered by this one as far as liveness goes.
            self.outstanding = self.outstanding.filter { $0.value.promise != nil }
            self.onRTT(rtt)
            entry.promise?.succeed(rtt)
            return
        }
        context.fireChannelRead(data)
    }

    /// Sends one PING now and reports its round trip (for `meshctl ping`).
    func ping(context: ChannelHandlerContext) -> EventLoopFuture<TimeAmount> {
        let promise = context.eventLoop.makePromise(of: TimeAmount.self)
        self.sendPing(context: context, promise: promise)
        return promise.futureResult
    }

    private func start(context: ChannelHandlerContext) {
        guard self.timer == nil else { return }
        // The handshake that just completed came from the peer: the first (partial) interval
        // starts heard, so a tunnel is never declared dead before it was asked once.
        self.heard = true
        self.scheduleTick(context: context, first: true)
    }

    private func scheduleTick(context: ChannelHandlerContext, first: Bool = false) {
        let delay = Self.delayToGrid(wallNow: self.wallClock(), interval: self.interval, first: first)
        self.timer = context.eventLoop.assumeIsolated().scheduleTask(in: delay) {
            // Stopped meanwhile, or the channel went away without telling us.
            guard self.timer != nil, context.channel.isActive else {
                self.timer = nil
                return
            }
            self.tick(context: context)
            if self.timer != nil { self.scheduleTick(context: context) }
        }
    }

    /// How long from `wallNow` to the next multiple of `interval` on the wall clock. After a tick
    /// (not `first`) at least half an interval: the grid point after that when the next one is
    /// nearer (the tick ran late, or the clock was stepped).
    static func delayToGrid(wallNow: Int64, interval: TimeAmount, first: Bool) -> TimeAmount {
        let step = max(1, interval.nanoseconds)
        let into = (wallNow % step + step) % step
        var delay = step - into
        if !first, delay < step / 2 { delay += step }
        return .nanoseconds(delay)
    }

    static func systemWallClock() -> Int64 {
        var now = timespec()
        clock_gettime(CLOCK_REALTIME, &now)
        return Int64(now.tv_sec) * 1_000_000_000 + Int64(now.tv_nsec)
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        self.heard = true
        context.fireChannelReadComplete()
    }

    private func tick(context: ChannelHandlerContext) {
        // Forget automatic PINGs too old to matter, so a peer that never answers them (but talks)
        // cannot grow the table.
        let stale = context.eventLoop.now - self.interval * Int64(self.deadAfter + 1)
        self.outstanding = self.outstanding.filter { $0.value.promise != nil || $0.value.sent > stale }
        let heard = self.heard
        self.heard = false
        switch self.state.tick(heard: heard) {
        case .none:
            let due = self.lastPing.map { context.eventLoop.now - $0 >= self.interval * Self.rttRefreshIntervals } ?? true
            if due { self.sendPing(context: context, promise: nil) }
        case .ping:
            self.sendPing(context: context, promise: nil)
        case .dead(let missed):
            self.timer?.cancel()
            self.timer = nil
            context.fireErrorCaught(TunnelDeadError(missed: missed, interval: self.interval))
            context.close(promise: nil)
        }
    }

    private func sendPing(context: ChannelHandlerContext, promise: EventLoopPromise<TimeAmount>?) {
        let payload = self.nextPayload
        self.nextPayload &+= 1
        self.lastPing = context.eventLoop.now
        self.outstanding[payload] = (context.eventLoop.now, promise)
        let frame = HTTP2Frame(streamID: .rootStream, payload: .ping(HTTP2PingData(withInteger: payload), ack: false))
        context.writeAndFlush(self.wrapOutboundOut(frame), promise: nil)
    }
}
