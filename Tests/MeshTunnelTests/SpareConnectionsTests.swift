import Logging
import MeshConfig
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import XCTest

@testable import MeshTunnel

/// The spare connections a service's `preconnect` keeps (`SpareConnections`), against a real
/// loopback listener in this process: a stream takes a connection the target accepted before the
/// stream existed, taken and aged spares are replaced while the target is in use and dropped once
/// it is not, a target that speaks first gets none, one that closes at once is retried with
/// backoff, and a reload or stop closes them.
final class SpareConnectionsTests: XCTestCase {
    /// A loopback listener that counts what it accepts and, optionally, greets or hangs up at once.
    final class Target: ChannelInboundHandler, @unchecked Sendable {
        typealias InboundIn = ByteBuffer
        enum Manner { case silent, greets, hangsUp }

        struct Counts {
            var accepted = 0
            var open = 0
            var received = ""
        }

        private let counts = NIOLockedValueBox(Counts())
        let manner: Manner
        init(manner: Manner) { self.manner = manner }

        var accepted: Int { self.counts.withLockedValue { $0.accepted } }
        var open: Int { self.counts.withLockedValue { $0.open } }
        var received: String { self.counts.withLockedValue { $0.received } }

        func channelActive(context: ChannelHandlerContext) {
            self.counts.withLockedValue {
                $0.accepted += 1
                $0.open += 1
            }
            switch self.manner {
            case .silent: break
            case .greets: context.writeAndFlush(NIOAny(context.channel.allocator.buffer(string: "220 hello\r\n")), promise: nil)
            case .hangsUp: context.close(promise: nil)
            }
        }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            let text = String(buffer: self.unwrapInboundIn(data))
            self.counts.withLockedValue { $0.received += text }
        }

        func channelInactive(context: ChannelHandlerContext) {
            self.counts.withLockedValue { $0.open -= 1 }
        }
    }

    /// Records what a stream's socket handler would see once it owns the channel.
    final class Taker: ChannelInboundHandler, @unchecked Sendable {
        typealias InboundIn = ByteBuffer
    }

    var group: MultiThreadedEventLoopGroup!
    var listeners: [Channel] = []

    override func setUp() {
        self.group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
    }

    override func tearDown() {
        for listener in self.listeners { try? listener.close().wait() }
        try? self.group.syncShutdownGracefully()
    }

    func listen(_ target: Target) throws -> Endpoint {
        let channel = try ServerBootstrap(group: self.group)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture { try channel.pipeline.syncOperations.addHandler(target) }
            }
            .bind(host: "127.0.0.1", port: 0).wait()
        self.listeners.append(channel)
        return .tcp(host: "127.0.0.1", port: channel.localAddress!.port!)
    }

    func makePool(_ timing: SpareConnections.Timing = .init()) -> SpareConnections {
        SpareConnections(loop: self.group.next(), timing: timing, logger: Logger(label: "test"))
    }

    /// A listener behaving as `manner`, a pool, and the first stream's ask for `preconnect` spares
    /// (which finds none ready: it connects on demand, and the pool starts opening spares).
    func firstAsk(
        _ manner: Target.Manner,
        preconnect: Int,
        timing: SpareConnections.Timing = .init()
    ) throws -> (target: Target, wanted: LocalTarget, pool: SpareConnections) {
        let target = Target(manner: manner)
        let wanted = LocalTarget(try self.listen(target), preconnect: preconnect)
        let pool = self.makePool(timing)
        XCTAssertNil(try self.onLoop(pool) { pool.take(wanted, handing: Taker()) })
        return (target, wanted, pool)
    }

    func ready(_ pool: SpareConnections, _ wanted: LocalTarget) throws -> Int {
        try self.onLoop(pool) { pool.readyCount(wanted.endpoint) }
    }

    func onLoop<T: Sendable>(_ pool: SpareConnections, _ body: @escaping @Sendable () throws -> T) throws -> T {
        try pool.loop.submit(body).wait()
    }

    /// Polls `condition` every 20 ms for up to `seconds`.
    func eventually(_ what: String, within seconds: Double = 5, _ condition: () throws -> Bool) rethrows {
        let deadline = Date().addingTimeInterval(seconds)
        while Date() < deadline {
            if try condition() { return }
            Thread.sleep(forTimeInterval: 0.02)
        }
        XCTFail("not within \(seconds) s: \(what)")
    }

    func testAStreamTakesAConnectionOpenedBeforeItAndTheSpareIsReplaced() throws {
        let (target, wanted, pool) = try self.firstAsk(.silent, preconnect: 2)
        try self.eventually("two spares ready") { try self.ready(pool, wanted) == 2 }
        try self.eventually("the target accepted both") { target.accepted == 2 }

        let taken = try XCTUnwrap(try self.onLoop(pool) { pool.take(wanted, handing: Taker()) })
        // The connection the stream got is one the target had already accepted, now carrying the
        // stream's handler instead of the spare's.
        XCTAssertNoThrow(try taken.pipeline.onItsLoop { try $0.handler(type: Taker.self) })
        XCTAssertThrowsError(try taken.pipeline.onItsLoop { try $0.handler(type: SpareSocket.self) })
        try taken.writeAndFlush(ByteBuffer(string: "startup")).wait()
        try self.eventually("the bytes reached the target") { target.received == "startup" }
        try self.eventually("the taken spare replaced") {
            try target.accepted == 3 && self.ready(pool, wanted) == 2
        }
        try taken.close().wait()
        try self.onLoop(pool) { pool.stop() }
        try self.eventually("stop closed every spare") { target.open == 0 }
        XCTAssertNil(try self.onLoop(pool) { pool.take(wanted, handing: Taker()) }, "a stopped pool opens nothing")
    }

    func testSparesAgeOutAreReplacedWhileInUseAndGoOnceUnused() throws {
        var timing = SpareConnections.Timing()
        timing.maximumAge = .milliseconds(300)
        timing.keepWarm = .milliseconds(1500)
        let asked = Date()
        let (target, _, pool) = try self.firstAsk(.silent, preconnect: 1, timing: timing)
        try self.eventually("the aged spare replaced") { target.accepted >= 3 }
        // Nobody asks again: once keepWarm passed, the spare that ages out then is not replaced.
        // (Before that, the count of open connections drops to 0 for a moment at every
        // replacement, so only the time says the target went cold.)
        let cold = asked.addingTimeInterval(1.5 + 0.3)
        if Date() < cold { Thread.sleep(forTimeInterval: cold.timeIntervalSinceNow) }
        try self.eventually("the spares dropped") { target.open == 0 }
        let accepted = target.accepted
        Thread.sleep(forTimeInterval: 0.7)
        XCTAssertEqual(target.accepted, accepted, "spares opened for a target nobody uses")
        XCTAssertLessThan(accepted, 12, "a spare lives 300 ms for about 1.5 s: ~6 connections, not a loop")
        try self.onLoop(pool) { pool.stop() }
    }

    func testATargetThatSpeaksFirstGetsNoSpares() throws {
        let (target, wanted, pool) = try self.firstAsk(.greets, preconnect: 2)
        try self.eventually("the greeted spares closed") {
            target.accepted >= 1 && target.open == 0
        }
        XCTAssertNil(try self.onLoop(pool) { pool.take(wanted, handing: Taker()) })
        Thread.sleep(forTimeInterval: 0.3)
        XCTAssertLessThanOrEqual(target.accepted, 2, "spares reopened for a target that speaks first")
        XCTAssertEqual(try self.ready(pool, wanted), 0)
        try self.onLoop(pool) { pool.stop() }
    }

    func testATargetThatHangsUpAtOnceIsRetriedWithBackoffNotInALoop() throws {
        let (target, wanted, pool) = try self.firstAsk(.hangsUp, preconnect: 2)
        Thread.sleep(forTimeInterval: 1.5)
        XCTAssertNil(try self.onLoop(pool) { pool.take(wanted, handing: Taker()) })
        let accepted = target.accepted
        XCTAssertGreaterThanOrEqual(accepted, 2, "the first spares were not even tried")
        // Backoff from 250 ms doubling, with jitter: a handful of attempts in 1.5 s, where a
        // reconnect loop would make thousands.
        XCTAssertLessThan(accepted, 30)
        XCTAssertEqual(try self.ready(pool, wanted), 0)
        try self.onLoop(pool) { pool.stop() }
    }

    func testAReloadKeepsOnlyTheTargetsStillConfigured() throws {
        let kept = Target(manner: .silent)
        let dropped = Target(manner: .silent)
        let keptEndpoint = try self.listen(kept)
        let droppedEndpoint = try self.listen(dropped)
        let pool = self.makePool()
        XCTAssertNil(try self.onLoop(pool) { pool.take(LocalTarget(keptEndpoint, preconnect: 3), handing: Taker()) })
        XCTAssertNil(try self.onLoop(pool) { pool.take(LocalTarget(droppedEndpoint, preconnect: 1), handing: Taker()) })
        try self.eventually("spares for both") { kept.open == 3 && dropped.open == 1 }
        try self.onLoop(pool) { pool.keep(only: [LocalTarget(keptEndpoint, preconnect: 1)]) }
        try self.eventually("the removed target's spare closed, the kept one trimmed to 1") {
            dropped.open == 0 && kept.open == 1
        }
        XCTAssertEqual(try self.onLoop(pool) { pool.readyCount(keptEndpoint) }, 1)
        try self.onLoop(pool) { pool.stop() }
        try self.eventually("stop closed the rest") { kept.open == 0 }
    }
}

extension ChannelPipeline {
    /// Runs `body` with the pipeline's synchronous operations on its loop, and waits for it.
    fileprivate func onItsLoop<T: Sendable>(_ body: @escaping @Sendable (SynchronousOperations) throws -> T) throws -> T {
        try self.eventLoop.submit { try body(self.syncOperations) }.wait()
    }
}
