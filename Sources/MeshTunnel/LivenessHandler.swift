import MeshTLS
import NIOCore
import NIOHTTP2

/// The tunnel was declared dead because the peer stopped answering PINGs.
public struct TunnelDeadError: Error, CustomStringConvertible {
    public var missed: Int
    public var interval: TimeAmount
    public var description: String {
        "no PING reply for \((self.interval * Int64(self.missed)).text) (\(self.missed) missed)"
    }
}

/// Sends an HTTP/2 PING every interval and closes the tunnel after `deadAfter` unanswered ones.
/// This catches what TCP alone does not: a peer frozen by SIGSTOP, a dropped route, a NAT that
/// forgot the flow. Anything read from the peer also proves it alive: a peer busy sending a burst
/// of data may answer a PING late, and must not be declared dead for it (seen with 1,000 streams on
/// a loaded machine). Answered PINGs give the RTT `meshctl peers` shows; on-demand PINGs from
/// `meshctl ping` share the same path.
final class LivenessHandler: ChannelDuplexHandler {
    typealias InboundIn = HTTP2Frame
    typealias InboundOut = HTTP2Frame
    typealias OutboundIn = HTTP2Frame
    typealias OutboundOut = HTTP2Frame

    private let interval: TimeAmount
    private let deadAfter: Int
    private let onRTT: (TimeAmount) -> Void
    private var timer: RepeatedTask?
    /// PINGs in flight: payload → when it was sent, and the promise of an on-demand ping.
    private var outstanding: [UInt64: (sent: NIODeadline, promise: EventLoopPromise<TimeAmount>?)] = [:]
    private var nextPayload: UInt64 = 1
    private var missed = 0
    /// Whether the peer sent anything since the last tick.
    private var heard = false

    init(interval: TimeAmount, deadAfter: Int, onRTT: @escaping (TimeAmount) -> Void) {
        self.interval = interval
        self.deadAfter = deadAfter
        self.onRTT = onRTT
    }

    /// PINGs start once TLS is up, not when TCP is: a PING written during the handshake is only
    /// held by the TLS handler, so counting it as missed would close a slow (or silent) handshake
    /// after `dead_after` pings with "no PING reply" instead of letting `handshake_timeout` decide,
    /// with its own reason.
    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if event is TLSHandshakeCompleted { self.start(context: context) }
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
            guard let entry = self.outstanding.removeValue(forKey: ping.integer) else { return }
            let rtt = NIODeadline.now() - entry.sent
            // Any answer proves the peer alive, including a late one.
            self.missed = 0
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
        let loopBound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
        self.timer = context.eventLoop.scheduleRepeatedTask(initialDelay: self.interval, delay: self.interval) { _ in
            let (handler, context) = loopBound.value
            handler.tick(context: context)
        }
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        self.heard = true
        context.fireChannelReadComplete()
    }

    private func tick(context: ChannelHandlerContext) {
        // Forget automatic PINGs too old to matter, so a peer that never answers them (but talks)
        // cannot grow the table.
        let stale = NIODeadline.now() - self.interval * Int64(self.deadAfter + 1)
        self.outstanding = self.outstanding.filter { $0.value.promise != nil || $0.value.sent > stale }
        let waiting = self.outstanding.contains { $0.value.promise == nil }
        if self.heard || !waiting {
            self.missed = 0
        } else {
            self.missed += 1
            if self.missed >= self.deadAfter {
                self.timer?.cancel()
                self.timer = nil
                context.fireErrorCaught(TunnelDeadError(missed: self.missed, interval: self.interval))
                context.close(promise: nil)
                return
            }
        }
        self.heard = false
        self.sendPing(context: context, promise: nil)
    }

    private func sendPing(context: ChannelHandlerContext, promise: EventLoopPromise<TimeAmount>?) {
        let payload = self.nextPayload
        self.nextPayload &+= 1
        self.outstanding[payload] = (NIODeadline.now(), promise)
        let frame = HTTP2Frame(streamID: .rootStream, payload: .ping(HTTP2PingData(withInteger: payload), ack: false))
        context.writeAndFlush(self.wrapOutboundOut(frame), promise: nil)
    }
}
