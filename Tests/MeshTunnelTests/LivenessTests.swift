import Foundation
import MeshConfig
import MeshTLS
import NIOCore
import NIOEmbedded
import NIOHTTP2
import XCTest

@testable import MeshTunnel

/// The liveness rule (`LivenessState`) tick by tick, then `LivenessHandler` in embedded channels on
/// a simulated clock: one end against a scripted peer, and two ends with real HTTP/2 handlers
/// between them (which answer PINGs by themselves, as on a real tunnel).
final class LivenessTests: XCTestCase {
    private let interval = TimeAmount.seconds(1)
    /// Simulated time moves in these steps; bytes between two ends are delivered after each one.
    private let step = TimeAmount.milliseconds(10)

    // MARK: - The rule

    func testBusyTunnelNeverPings() {
        var state = LivenessState(deadAfter: 3)
        for _ in 0..<100 { XCTAssertEqual(state.tick(heard: true), LivenessState.Action.none) }
    }

    func testSilencePingsThenDeclaresDeadAtDeadAfter() {
        var state = LivenessState(deadAfter: 3)
        XCTAssertEqual(state.tick(heard: true), LivenessState.Action.none)
        XCTAssertEqual(state.tick(heard: false), .ping)
        XCTAssertEqual(state.tick(heard: false), .ping)
        XCTAssertEqual(state.tick(heard: false), .dead(missed: 3))
    }

    func testAnythingHeardResetsTheCount() {
        var state = LivenessState(deadAfter: 3)
        XCTAssertEqual(state.tick(heard: false), .ping)
        XCTAssertEqual(state.tick(heard: false), .ping)
        XCTAssertEqual(state.tick(heard: true), LivenessState.Action.none)
        XCTAssertEqual(state.missed, 0)
        XCTAssertEqual(state.tick(heard: false), .ping)
        XCTAssertEqual(state.tick(heard: false), .ping)
        XCTAssertEqual(state.tick(heard: false), .dead(missed: 3))
    }

    /// With one allowed miss there is no silent interval to spare: every tick asks.
    func testDeadAfterOnePingsEveryTick() {
        var state = LivenessState(deadAfter: 1)
        XCTAssertEqual(state.tick(heard: true), .ping)
        XCTAssertEqual(state.tick(heard: true), .ping)
        XCTAssertEqual(state.tick(heard: false), .dead(missed: 1))
    }

    /// Every sequence of 12 ticks (the first one heard: the handshake) for dead_after 1-4: the
    /// tunnel is declared dead exactly at the tick that ends dead_after silent intervals, never
    /// earlier, and only when the previous tick sent a PING that got no answer; a silent interval
    /// always sends a PING unless it is the last.
    func testDeadExactlyAfterDeadAfterSilentIntervalsAndNeverWithoutAsking() {
        let ticks = 12
        var wrong: [String] = []
        for deadAfter in 1...4 {
            for mask in 0..<(1 << (ticks - 1)) {
                var state = LivenessState(deadAfter: deadAfter)
                var previous: LivenessState.Action?
                var silent = 0
                for index in 0..<ticks {
                    let heard = index == 0 || mask & (1 << (index - 1)) != 0
                    silent = heard ? 0 : silent + 1
                    let action = state.tick(heard: heard)
                    let expected: LivenessState.Action =
                        silent >= deadAfter ? .dead(missed: deadAfter) : heard && deadAfter > 1 ? .none : .ping
                    if action != expected {
                        wrong.append("dead_after \(deadAfter), ticks \(mask), tick \(index): \(action), expected \(expected)")
                    }
                    if case .dead = action {
                        if previous != .ping { wrong.append("dead_after \(deadAfter), ticks \(mask): dead without asking") }
                        break
                    }
                    previous = action
                }
            }
        }
        XCTAssertEqual(wrong.count, 0, "first: \(wrong.prefix(5))")
    }

    // MARK: - One end against a scripted peer

    /// (a) A lone idle end whose peer answers every PING (30 ms later): never declared dead over
    /// 20 intervals, never more than one PING in an interval (here every other one: an answer is
    /// the proof of life for the next interval), and every answer reports its RTT.
    func testIdlePeerThatAnswersIsNeverDeadAndGetsAtMostOnePingPerInterval() throws {
        let end = try End(interval: self.interval, deadAfter: 3)
        let rtt = TimeAmount.milliseconds(30)
        var answers: [(due: NIODeadline, payload: UInt64)] = []
        var pingTimes: [TimeAmount] = []
        try end.run(for: self.interval * 20 + .milliseconds(100), step: self.step) {
            for payload in try end.sentPings() {
                pingTimes.append(end.elapsed)
                answers.append((end.loop.now + rtt, payload))
            }
            while let first = answers.first, first.due <= end.loop.now {
                answers.removeFirst()
                try end.answer(first.payload)
            }
        }
        XCTAssertTrue(end.channel.isActive, "an answering peer must never be declared dead")
        XCTAssertNoThrow(try end.channel.throwIfErrorCaught())
        XCTAssertEqual(Self.mostPerInterval(pingTimes, self.interval), 1, "PINGs at \(pingTimes)")
        // The first tick measures the round trip at once; from then on the answer to each PING is
        // the proof of life for the next interval.
        XCTAssertEqual(pingTimes, (0..<10).map { self.interval * Int64(2 * $0 + 1) }, "a PING every other interval")
        XCTAssertEqual(end.recorder.rtts, Array(repeating: rtt, count: pingTimes.count))
        try end.finish()
    }

    /// (b) A peer that keeps sending frames gets no PINGs at all: its frames are the proof of life.
    func testPeerThatKeepsTalkingGetsOnlyRTTRefreshPings() throws {
        let end = try End(interval: self.interval, deadAfter: 3)
        var pings: [TimeAmount] = []
        try end.run(for: self.interval * 20, step: self.step) {
            if end.elapsed.nanoseconds % TimeAmount.milliseconds(250).nanoseconds == 0 { try end.talk() }
            pings += try end.sentPings().map { _ in end.elapsed }
        }
        // None for liveness: the first tick measures the RTT, then one per refresh period.
        XCTAssertEqual(pings.count, 2, "\(pings)")
        if pings.count == 2 {
            XCTAssertEqual(pings[1] - pings[0], self.interval * LivenessHandler.rttRefreshIntervals, "\(pings)")
        }
        XCTAssertTrue(end.channel.isActive)
        XCTAssertNoThrow(try end.channel.throwIfErrorCaught())
        try end.finish()
    }

    /// (c) A peer that falls silent (its last frame early, mid-way, late in an interval, or just
    /// after a tick) is declared dead at the tick that ends dead_after silent intervals: at least
    /// dead_after x interval and at most dead_after x interval + 1 s after its last byte, after
    /// dead_after - 1 unanswered PINGs, with TunnelDeadError and the tunnel closed.
    func testSilentPeerIsDeclaredDeadAfterExactlyDeadAfterIntervals() throws {
        for deadAfter in [1, 3] {
            for offset in [10, 500, 990, 1000].map(TimeAmount.milliseconds) {
                let label = "dead_after \(deadAfter), last byte \(offset.nanoseconds / 1_000_000) ms after the second tick"
                let end = try End(interval: self.interval, deadAfter: deadAfter)
                let lastByte = self.interval * 2 + offset
                var pingsAfterLastByte = 0
                var deadAt: TimeAmount?
                try end.run(for: self.interval * 10, step: self.step) {
                    let pings = try end.sentPings()
                    if end.elapsed <= lastByte {
                        // Talking, and answering whatever it is asked, until it falls silent.
                        for payload in pings { try end.answer(payload) }
                        if end.elapsed.nanoseconds % TimeAmount.milliseconds(100).nanoseconds == 0 || end.elapsed == lastByte {
                            try end.talk()
                        }
                    } else {
                        pingsAfterLastByte += pings.count
                    }
                    if deadAt == nil, !end.channel.isActive { deadAt = end.elapsed }
                }
                guard let deadAt else {
                    XCTFail("\(label): never declared dead")
                    continue
                }
                // The tick after the last byte resets; dead_after ticks later the tunnel is dead.
                let firstTickAfter = self.interval * (lastByte.nanoseconds / self.interval.nanoseconds + 1)
                XCTAssertEqual(deadAt, firstTickAfter + self.interval * Int64(deadAfter), label)
                XCTAssertGreaterThanOrEqual(deadAt - lastByte, self.interval * Int64(deadAfter), label)
                XCTAssertLessThanOrEqual(deadAt - lastByte, self.interval * Int64(deadAfter) + .seconds(1), label)
                XCTAssertEqual(pingsAfterLastByte, max(deadAfter - 1, 1), label)
                XCTAssertThrowsError(try end.channel.throwIfErrorCaught(), label) { error in
                    guard let dead = error as? TunnelDeadError else { return XCTFail("\(label): \(error)") }
                    XCTAssertEqual(dead.missed, deadAfter, label)
                    XCTAssertEqual(dead.interval, self.interval, label)
                }
                XCTAssertTrue(end.channel.closeFuture.isSucceeded, label)
            }
        }
    }

    /// Ticks fall on multiples of the interval, whenever a tunnel came up, so the tunnels of one
    /// loop (and the nodes of a mesh whose clocks agree) wake together once per interval instead of
    /// once per tunnel. Three ends on one loop whose TLS came up early, mid-way and late in the first
    /// interval, their peers silent: every PING goes out at a multiple of the interval, the same
    /// instants for all three, and each end is still declared dead between dead_after and
    /// dead_after + 1 intervals after its handshake (the last byte it heard).
    func testTunnelsOnOneLoopTickTogetherOnTheIntervalGrid() throws {
        let loop = EmbeddedEventLoop()
        let ups = [10, 370, 990].map(TimeAmount.milliseconds)
        let ends = try ups.map { _ in try End(interval: self.interval, deadAfter: 3, loop: loop, startNow: false) }
        var deadAt: [TimeAmount?] = ups.map { _ in nil }
        try ends[0].run(for: self.interval * 8, step: self.step) {
            for (index, end) in ends.enumerated() {
                if end.elapsed == ups[index] { end.tlsUp() }
                _ = try end.sentPings()
                if deadAt[index] == nil, !end.channel.isActive { deadAt[index] = end.elapsed }
            }
        }
        for (index, end) in ends.enumerated() {
            let label = "TLS up at \(ups[index].nanoseconds / 1_000_000) ms"
            let pings = end.counter.times
            // The first tick measures the RTT; the next two ask the silent peer.
            XCTAssertEqual(pings, [self.interval, self.interval * 2, self.interval * 3], "\(label): PINGs on the grid")
            guard let dead = deadAt[index] else {
                XCTFail("\(label): never declared dead")
                continue
            }
            XCTAssertEqual(dead, self.interval * 4, label)
            XCTAssertGreaterThanOrEqual(dead - ups[index], self.interval * 3, label)
            XCTAssertLessThanOrEqual(dead - ups[index], self.interval * 3 + .seconds(1), label)
            XCTAssertThrowsError(try end.channel.throwIfErrorCaught(), label) { XCTAssertTrue($0 is TunnelDeadError, "\($0)") }
        }
    }

    /// The first tick goes to the next grid point however near; later ones at least half an
    /// interval on, so a late tick or a stepped clock never crowds two ticks together.
    func testDelayToGridIsTheNextMultipleOfTheIntervalAndNeverCrowds() {
        let second = TimeAmount.seconds(1)
        func delay(_ wall: Int64, first: Bool = false, _ interval: TimeAmount = .seconds(1)) -> TimeAmount {
            LivenessHandler.delayToGrid(wallNow: wall, interval: interval, first: first)
        }
        XCTAssertEqual(delay(0), second, "a tick exactly on the grid schedules the next one, not itself")
        XCTAssertEqual(delay(1_000_000_000), second)
        XCTAssertEqual(delay(5_000_000_300), .nanoseconds(999_999_700), "a tick a little late keeps the grid")
        XCTAssertEqual(delay(2_600_000_000, .milliseconds(250)), .milliseconds(150))
        XCTAssertEqual(delay(1_990_000_000, first: true), .milliseconds(10), "a first tick may come soon")
        XCTAssertEqual(delay(1_990_000_000), .milliseconds(1_010), "a later one skips a grid point nearer than half an interval")
        XCTAssertEqual(delay(1_500_000_000), .milliseconds(500))
        XCTAssertEqual(delay(-300_000_000, first: true), .milliseconds(300), "before the epoch the grid still holds")
    }

    /// A wall clock stepped between ticks (backwards or forwards by up to an interval) moves the
    /// grid, and every gap between two ticks stays between half an interval and one and a half.
    func testSteppedWallClockKeepsTicksBetweenHalfAndOneAndAHalfIntervals() throws {
        let loop = EmbeddedEventLoop()
        var offset: Int64 = 0
        let counter = PingCounter(start: loop.now)
        let handler = LivenessHandler(
            interval: self.interval,
            deadAfter: 1,  // a PING at every tick, so the PINGs show when the ticks came
            wallClock: { Int64(loop.now.uptimeNanoseconds) + offset },
            onRTT: { _ in }
        )
        let channel = EmbeddedChannel(loop: loop)
        try channel.pipeline.syncOperations.addHandler(counter)
        try channel.pipeline.syncOperations.addHandler(handler)
        try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 1)).wait()
        channel.pipeline.fireUserInboundEventTriggered(Self.handshake)
        let steps: [Int64] = [0, -700, 400, 900, -250, 0, 650, -999, 0].map { $0 * 1_000_000 }
        var index = 0
        while loop.now.uptimeNanoseconds < 30_000_000_000 && channel.isActive {
            loop.advanceTime(by: self.step)
            // Answer every PING at once, so that deadAfter 1 never ends the tunnel.
            while let frame = try channel.readOutbound(as: HTTP2Frame.self) {
                if case .ping(let data, ack: false) = frame.payload {
                    try channel.writeInbound(HTTP2Frame(streamID: .rootStream, payload: .ping(data, ack: true)))
                }
            }
            if loop.now.uptimeNanoseconds % 3_000_000_000 == 1_500_000_000 {
                offset += steps[index % steps.count]
                index += 1
            }
        }
        let ticks = counter.times
        XCTAssertGreaterThanOrEqual(ticks.count, 20, "\(ticks)")
        for (earlier, later) in zip(ticks, ticks.dropFirst()) {
            XCTAssertGreaterThanOrEqual(later - earlier, .milliseconds(500), "ticks at \(ticks)")
            XCTAssertLessThanOrEqual(later - earlier, .milliseconds(1_500), "ticks at \(ticks)")
        }
        _ = try channel.finish(acceptAlreadyClosed: true)
    }

    /// (d) An on-demand PING (`meshctl ping`) reports its RTT, idle or on a tunnel too busy for
    /// automatic PINGs.
    func testOnDemandPingReportsItsRTT() throws {
        let end = try End(interval: self.interval, deadAfter: 3)
        for busy in [false, true] {
            let future = end.handler.ping(context: end.context)
            let payloads = try end.sentPings()
            XCTAssertEqual(payloads.count, 1)
            for _ in 0..<42 {
                end.loop.advanceTime(by: .milliseconds(1))
                if busy { try end.talk() }
            }
            try end.answer(payloads[0])
            XCTAssertEqual(try future.wait(), .milliseconds(42), "busy: \(busy)")
        }
        XCTAssertEqual(end.recorder.rtts, [.milliseconds(42), .milliseconds(42)])
        XCTAssertTrue(end.handler.outstanding.isEmpty)
        try end.finish()
    }

    /// A peer that talks now and then but never answers a PING cannot grow the table of
    /// outstanding PINGs.
    func testUnansweredPingsStayBounded() throws {
        let end = try End(interval: self.interval, deadAfter: 3)
        var pings = 0
        var most = 0
        try end.run(for: self.interval * 100, step: self.step) {
            // Every other interval, mid-way: never dead_after silent intervals in a row.
            if end.elapsed.nanoseconds % (self.interval * 2).nanoseconds == TimeAmount.milliseconds(1500).nanoseconds {
                try end.talk()
            }
            pings += try end.sentPings().count
            most = max(most, end.handler.outstanding.count)
        }
        XCTAssertTrue(end.channel.isActive)
        XCTAssertGreaterThan(pings, 40)
        XCTAssertLessThanOrEqual(most, 3)
        try end.finish()
    }

    // MARK: - Two ends with HTTP/2 between them

    /// Two idle ends, up at different moments: no tunnel is declared dead; the dialer asks every other
    /// interval and the acceptor, hearing those PINGs, never needs to (the old rule sent two per
    /// interval).
    func testTwoIdleEndsExchangeOnePingPerTwoIntervals() throws {
        for phase in [0, 10, 370, 990].map(TimeAmount.milliseconds) {
            let pair = try Pair(interval: self.interval, deadAfter: 3, phase: phase, step: self.step)
            try pair.run(for: self.interval * 30, step: self.step)
            XCTAssertTrue(pair.a.channel.isActive && pair.b.channel.isActive, "phase \(phase)")
            XCTAssertNoThrow(try pair.a.channel.throwIfErrorCaught())
            XCTAssertNoThrow(try pair.b.channel.throwIfErrorCaught())
            let a = pair.a.counter.times
            let b = pair.b.counter.times
            XCTAssertLessThanOrEqual(Self.mostPerInterval(a, self.interval), 1, "phase \(phase): a \(a)")
            XCTAssertLessThanOrEqual(Self.mostPerInterval(b, self.interval), 1, "phase \(phase): b \(b)")
            XCTAssertLessThanOrEqual(a.count, 16, "phase \(phase): the dialer asks every other interval: \(a)")
            XCTAssertGreaterThanOrEqual(a.count, 13, "phase \(phase): the dialer keeps asking: \(a)")
            XCTAssertLessThanOrEqual(
                b.count,
                3,
                "phase \(phase): the acceptor hears the dialer's PINGs and asks only to refresh its RTT: \(b)"
            )
            XCTAssertFalse(pair.a.recorder.rtts.isEmpty || pair.b.recorder.rtts.isEmpty, "phase \(phase)")
            print("RESULT liveness two idle ends, phase \(phase.nanoseconds / 1_000_000) ms: \(a.count) + \(b.count) PINGs in 30 intervals")
            try pair.finish()
        }
    }

    /// Two idle ends, then one freezes (nothing it would send arrives any more): the other
    /// declares the tunnel dead between dead_after and dead_after + 1 intervals after the last
    /// byte it got.
    func testFrozenEndIsDetectedByTheOther() throws {
        for phase in [10, 370, 990].map(TimeAmount.milliseconds) {
            let pair = try Pair(interval: self.interval, deadAfter: 3, phase: phase, step: self.step)
            try pair.run(for: self.interval * 10 + phase, step: self.step)
            pair.bFrozen = true
            try pair.run(for: self.interval * 10, step: self.step)
            guard let deadAt = pair.aClosedAt, let lastHeard = pair.aLastHeard else {
                XCTFail("phase \(phase): a never declared the frozen b dead")
                continue
            }
            XCTAssertGreaterThanOrEqual(deadAt - lastHeard, self.interval * 3, "phase \(phase)")
            XCTAssertLessThanOrEqual(deadAt - lastHeard, self.interval * 3 + .seconds(1), "phase \(phase)")
            XCTAssertThrowsError(try pair.a.channel.throwIfErrorCaught()) { XCTAssertTrue($0 is TunnelDeadError, "\($0)") }
            _ = try? pair.b.channel.finish(acceptAlreadyClosed: true)
        }
    }

    /// The acceptor, which does not ask while the dialer's PINGs keep coming, still asks and then
    /// declares a frozen dialer dead within dead_after + 1 intervals of the last byte it got.
    func testFrozenDialerIsDetectedByTheAcceptor() throws {
        for phase in [10, 370, 990].map(TimeAmount.milliseconds) {
            let pair = try Pair(interval: self.interval, deadAfter: 3, phase: phase, step: self.step)
            try pair.run(for: self.interval * 10 + phase, step: self.step)
            let asked = pair.b.counter.times.count
            pair.aFrozen = true
            try pair.run(for: self.interval * 10, step: self.step)
            guard let deadAt = pair.bClosedAt, let lastHeard = pair.bLastHeard else {
                XCTFail("phase \(phase): b never declared the frozen a dead")
                continue
            }
            XCTAssertGreaterThanOrEqual(deadAt - lastHeard, self.interval * 3, "phase \(phase)")
            XCTAssertLessThanOrEqual(deadAt - lastHeard, self.interval * 3 + .seconds(1), "phase \(phase)")
            XCTAssertGreaterThan(pair.b.counter.times.count, asked, "phase \(phase): b asked before giving up")
            XCTAssertThrowsError(try pair.b.channel.throwIfErrorCaught()) { XCTAssertTrue($0 is TunnelDeadError, "\($0)") }
            _ = try? pair.a.channel.finish(acceptAlreadyClosed: true)
        }
    }

    /// The acceptor's rule: silent for one interval, it waits; for two, it asks; for dead_after, it
    /// gives up, one interval after asking.
    func testAcceptorAsksAfterTwoSilentIntervals() {
        var state = LivenessState(deadAfter: 3, asksFirst: false)
        XCTAssertEqual(state.tick(heard: true), LivenessState.Action.none)
        XCTAssertEqual(state.tick(heard: false), LivenessState.Action.none)
        XCTAssertEqual(state.tick(heard: false), .ping)
        XCTAssertEqual(state.tick(heard: false), .dead(missed: 3))
        var short = LivenessState(deadAfter: 2, asksFirst: false)
        XCTAssertEqual(short.tick(heard: false), .ping, "with dead_after 2 there is no interval to wait")
    }

    // MARK: - Helpers

    private static func mostPerInterval(_ times: [TimeAmount], _ interval: TimeAmount) -> Int {
        Dictionary(grouping: times) { $0.nanoseconds / interval.nanoseconds }.values.map(\.count).max() ?? 0
    }

    static let handshake = TLSHandshakeCompleted(
        peer: MeshIdentity(mesh: "test", node: "peer"),
        peerCertificateNotAfter: .distantFuture,
        alpn: "h2"
    )

    final class Recorder {
        var rtts: [TimeAmount] = []
    }

    /// Counts the PINGs the liveness handler writes (not the HTTP/2 handler's automatic answers).
    final class PingCounter: ChannelOutboundHandler {
        typealias OutboundIn = HTTP2Frame
        typealias OutboundOut = HTTP2Frame
        let start: NIODeadline
        var times: [TimeAmount] = []
        init(start: NIODeadline) { self.start = start }
        func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
            if case .ping(_, ack: false) = self.unwrapOutboundIn(data).payload {
                self.times.append(context.eventLoop.now - self.start)
            }
            context.write(data, promise: promise)
        }
    }

    /// One tunnel end: a liveness handler in an embedded channel, started (TLS up) at time zero
    /// unless `startNow` is false. With `http2`, the tunnel's HTTP/2 frame handler sits below it.
    final class End {
        let loop: EmbeddedEventLoop
        let channel: EmbeddedChannel
        let handler: LivenessHandler
        let context: ChannelHandlerContext
        let recorder = Recorder()
        let counter: PingCounter
        let start: NIODeadline

        init(
            interval: TimeAmount,
            deadAfter: Int,
            loop: EmbeddedEventLoop = EmbeddedEventLoop(),
            http2: NIOHTTP2Handler.ParserMode? = nil,
            startNow: Bool = true
        ) throws {
            self.loop = loop
            self.start = loop.now
            self.channel = EmbeddedChannel(loop: loop)
            let recorder = self.recorder
            // As in a tunnel: the HTTP/2 client (the dialer) asks first. The simulated clock
            // places the ticks, as the wall clock does in meshd.
            self.handler = LivenessHandler(
                interval: interval,
                deadAfter: deadAfter,
                asksFirst: http2 != .server,
                wallClock: { Int64(loop.now.uptimeNanoseconds) },
                onRTT: { recorder.rtts.append($0) }
            )
            self.counter = PingCounter(start: loop.now)
            let sync = self.channel.pipeline.syncOperations
            if let http2 {
                try sync.addHandler(TunnelFrameHandler(isDialer: http2 == .client, limits: TunnelTuning.framing(maxStreams: 100)))
            }
            try sync.addHandler(self.counter)
            try sync.addHandler(self.handler)
            self.context = try sync.context(handler: self.handler)
            try self.channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 1)).wait()
            if startNow { self.tlsUp() }
        }

        var elapsed: TimeAmount { self.loop.now - self.start }

        func tlsUp() {
            self.channel.pipeline.fireUserInboundEventTriggered(LivenessTests.handshake)
        }

        /// Advances the clock step by step, calling `each` after every step, until `duration`.
        func run(for duration: TimeAmount, step: TimeAmount, _ each: () throws -> Void) throws {
            let end = self.loop.now + duration
            while self.loop.now < end {
                self.loop.advanceTime(by: step)
                try each()
            }
        }

        /// Payloads of the PINGs written since the last call.
        func sentPings() throws -> [UInt64] {
            var payloads: [UInt64] = []
            while let frame = try self.channel.readOutbound(as: HTTP2Frame.self) {
                if case .ping(let data, ack: false) = frame.payload { payloads.append(data.integer) }
            }
            return payloads
        }

        func answer(_ payload: UInt64) throws {
            try self.channel.writeInbound(
                HTTP2Frame(streamID: .rootStream, payload: .ping(HTTP2PingData(withInteger: payload), ack: true))
            )
        }

        /// Any frame from the peer (a connection-level WINDOW_UPDATE, as a busy tunnel sends).
        func talk() throws {
            try self.channel.writeInbound(HTTP2Frame(streamID: .rootStream, payload: .windowUpdate(windowSizeIncrement: 1)))
            while try self.channel.readInbound(as: HTTP2Frame.self) != nil {}
        }

        func finish() throws {
            _ = try self.channel.finish(acceptAlreadyClosed: true)
        }
    }

    /// A client end `a` and a server end `b` on one clock, with HTTP/2 handlers and bytes carried
    /// between them after every step (so a one-way delay of at most one step). `b`'s TLS comes up
    /// `phase` after `a`'s (both tick on the interval grid, so the phase shifts only where in its
    /// first interval each end starts).
    final class Pair {
        let a: End
        let b: End
        /// Drops everything `b` (or `a`) sends, as a frozen process or a cut route would.
        var bFrozen = false
        var aFrozen = false
        private(set) var aLastHeard: TimeAmount?
        private(set) var aClosedAt: TimeAmount?
        private(set) var bLastHeard: TimeAmount?
        private(set) var bClosedAt: TimeAmount?

        init(interval: TimeAmount, deadAfter: Int, phase: TimeAmount, step: TimeAmount) throws {
            let loop = EmbeddedEventLoop()
            self.a = try End(interval: interval, deadAfter: deadAfter, loop: loop, http2: .client, startNow: false)
            self.b = try End(interval: interval, deadAfter: deadAfter, loop: loop, http2: .server, startNow: false)
            try self.carry()
            self.a.tlsUp()
            try self.run(for: phase, step: step)
            self.b.tlsUp()
        }

        func run(for duration: TimeAmount, step: TimeAmount) throws {
            try self.a.run(for: duration, step: step) { try self.carry() }
        }

        /// Moves bytes both ways until neither end has more to send.
        func carry() throws {
            var moved = true
            while moved {
                moved = false
                while let bytes = try self.a.channel.readOutbound(as: IOData.self) {
                    if !self.aFrozen, self.b.channel.isActive {
                        try self.b.channel.writeInbound(Self.buffer(bytes))
                        self.bLastHeard = self.b.elapsed
                    }
                    moved = true
                }
                while let bytes = try self.b.channel.readOutbound(as: IOData.self) {
                    if !self.bFrozen, self.a.channel.isActive {
                        try self.a.channel.writeInbound(Self.buffer(bytes))
                        self.aLastHeard = self.a.elapsed
                    }
                    moved = true
                }
            }
            while try self.a.channel.readInbound(as: HTTP2Frame.self) != nil {}
            while try self.b.channel.readInbound(as: HTTP2Frame.self) != nil {}
            if self.aClosedAt == nil, !self.a.channel.isActive { self.aClosedAt = self.a.elapsed }
            if self.bClosedAt == nil, !self.b.channel.isActive { self.bClosedAt = self.b.elapsed }
        }

        private static func buffer(_ data: IOData) -> ByteBuffer {
            guard case .byteBuffer(let buffer) = data else { preconditionFailure("file regions are not sent here") }
            return buffer
        }

        func finish() throws {
            try self.a.finish()
            try self.b.finish()
        }
    }
}

extension EventLoopFuture {
    /// Whether the future has succeeded (an embedded channel's close future: no waiting needed).
    fileprivate var isSucceeded: Bool {
        var done = false
        self.whenSuccess { _ in done = true }
        return done
    }
}
