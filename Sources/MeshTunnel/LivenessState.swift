import MeshTLS
import NIOCore
import NIOHTTP2

/// What a tunnel does at each liveness tick, given whether anything arrived from the peer since
/// the previous one. Pure, so the timing argument below can be checked without a network.
///
/// An interval in which the peer sent anything is proof of life, so no PING is needed: asking
/// anyway cost an idle 32-node mesh two thirds of its idle CPU (31 peers x 1 PING/s each way).
/// Only a silent interval counts as missed and asks with a PING, so the peer is heard again by the
/// next tick if it is alive. Both ends run this rule: a PING from one end is the other end's proof
/// of life for that interval, so an idle tunnel settles into the ends taking turns, about one
/// exchange per interval per tunnel instead of one each way, and a busy tunnel sends none.
///
/// Detection: if the last byte from the peer arrives in the interval ending at tick k, tick k
/// resets, ticks k+1 ... k+deadAfter-1 each send a PING, and tick k+deadAfter declares the tunnel
/// dead: between deadAfter and deadAfter+1 intervals after that byte, the same window as when
/// every tick sent a PING (with the 1 s default, within `dead_after` seconds + 1 s). The price is
/// that the first PING goes out one interval later, so a peer that is alive but silent must answer
/// within deadAfter-1 intervals instead of deadAfter.
///
/// The tunnel is only ever declared dead one interval after a PING went out unanswered: never
/// without asking. With deadAfter 1 there is no silent interval to spare, so every tick sends a
/// PING there, as before.
///
/// The ends do not ask alike: the dialer asks after one silent interval, the acceptor (with
/// deadAfter 3 or more) only after two. An idle dialer's PING is then the acceptor's proof of life
/// every other interval, so the acceptor never needs to ask, and an idle tunnel costs one PING
/// exchange per two intervals instead of ends taking turns every interval. The acceptor still
/// asks before it gives up (at deadAfter-1 silent intervals) when the dialer falls silent.
struct LivenessState {
    enum Action: Equatable {
        case none
        case ping
        /// No proof of life for `missed` intervals: close the tunnel.
        case dead(missed: Int)
    }

    let deadAfter: Int
    /// Silent intervals after which this end asks: 1 for the dialer, 2 for the acceptor when
    /// deadAfter leaves room for it.
    let pingAfter: Int
    /// Consecutive ticks that found nothing heard from the peer.
    private(set) var missed = 0

    init(deadAfter: Int, asksFirst: Bool = true) {
        self.deadAfter = max(1, deadAfter)
        self.pingAfter = asksFirst || self.deadAfter < 3 ? 1 : 2
    }

    mutating func tick(heard: Bool) -> Action {
        if heard {
            self.missed = 0
            return self.deadAfter == 1 ? .ping : .none
        }
        self.missed += 1
        if self.missed >= self.deadAfter { return .dead(missed: self.missed) }
        return self.missed >= self.pingAfter ? .ping : .none
    }
}
