import Logging
import MeshBalancer
import NIOConcurrencyHelpers
import NIOCore
import NIOEmbedded
import XCTest

/// `BackendKeyWatcher` on a client channel's outbound path and `CancelRoutes`, the map of live
/// sessions' cancel keys: the server's bytes pass unchanged, the key is learnt at any split of the
/// stream, the watcher leaves once it knows, and a session's key goes when its connection closes.
final class BackendKeyWatcherTests: XCTestCase {
    let route: FrontDoorHandler.Route = (service: "postgres", node: "db2")

    /// A connected channel, as a client's is (writes on an unconnected EmbeddedChannel never complete).
    func connected() throws -> EmbeddedChannel {
        let channel = EmbeddedChannel()
        try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 6432)).wait()
        return channel
    }

    /// A channel with a watcher that records every outcome it reports.
    func watched(_ outcomes: NIOLockedValueBox<[BackendKeyScanner.Outcome]>) throws -> EmbeddedChannel {
        let channel = try self.connected()
        try channel.pipeline.syncOperations.addHandler(BackendKeyWatcher { outcome in outcomes.withLockedValue { $0.append(outcome) } })
        return channel
    }

    /// Writes and flushes as the splice does, without blocking: a write that never completes (a lost
    /// flush) fails the test instead of hanging it.
    func send(to channel: EmbeddedChannel, _ buffer: ByteBuffer, file: StaticString = #filePath, line: UInt = #line) {
        let completed = NIOLockedValueBox(false)
        channel.writeAndFlush(buffer).whenComplete { _ in completed.withLockedValue { $0 = true } }
        channel.embeddedEventLoop.run()
        XCTAssertTrue(completed.withLockedValue { $0 }, "the write completed", file: file, line: line)
    }

    /// Every buffer that left the channel, in order, as written.
    func written(_ channel: EmbeddedChannel) throws -> [ByteBuffer] {
        var buffers: [ByteBuffer] = []
        while let buffer = try channel.readOutbound(as: ByteBuffer.self) { buffers.append(buffer) }
        return buffers
    }

    func hasWatcher(_ channel: EmbeddedChannel) -> Bool {
        (try? channel.pipeline.syncOperations.handler(type: BackendKeyWatcher.self)) != nil
    }

    func testKeyIsReportedAtEveryTwoWaySplitAndBytesPassUnchanged() throws {
        let key = BackendKeyData(processID: 4242, secretKey: [9, 8, 7, 6])
        let greeting = BackendKeyScannerTests.serverGreeting(key: key, notice: true)
        for split in 0...greeting.readableBytes {
            let outcomes = NIOLockedValueBox<[BackendKeyScanner.Outcome]>([])
            let channel = try self.watched(outcomes)
            let parts = [greeting.getSlice(at: 0, length: split)!, greeting.getSlice(at: split, length: greeting.readableBytes - split)!]
            for part in parts { self.send(to: channel, part) }
            XCTAssertEqual(try self.written(channel), parts, "split at \(split): the same bytes in the same writes")
            XCTAssertEqual(outcomes.withLockedValue { $0 }, [.keyData(key)], "split at \(split)")
            XCTAssertFalse(self.hasWatcher(channel), "split at \(split): the watcher left")
            _ = try channel.finish()
        }
    }

    func testKeyIsReportedByteByByteOnceAndTheWatcherLeavesAtTheKey() throws {
        let key = BackendKeyData(processID: 7, secretKey: Array(repeating: 0xC3, count: 32))
        let greeting = BackendKeyScannerTests.serverGreeting(key: key)
        let keyEnds = greeting.readableBytes - 6  // the trailing ReadyForQuery is 6 bytes
        let outcomes = NIOLockedValueBox<[BackendKeyScanner.Outcome]>([])
        let channel = try self.watched(outcomes)
        var out = ByteBuffer()
        for index in 0..<greeting.readableBytes {
            self.send(to: channel, greeting.getSlice(at: index, length: 1)!)
            XCTAssertEqual(self.hasWatcher(channel), index < keyEnds - 1, "byte \(index)")
            for var buffer in try self.written(channel) { out.writeBuffer(&buffer) }
        }
        XCTAssertEqual(out, greeting)
        XCTAssertEqual(outcomes.withLockedValue { $0 }, [.keyData(key)])
        _ = try channel.finish()
    }

    func testProtocol32VariableLengthKeys() throws {
        for length in [1, 4, 32, 256] {
            let key = BackendKeyData(processID: Int32.max, secretKey: (0..<length).map { UInt8(truncatingIfNeeded: $0 &* 7) })
            let outcomes = NIOLockedValueBox<[BackendKeyScanner.Outcome]>([])
            let channel = try self.watched(outcomes)
            self.send(to: channel, BackendKeyScannerTests.serverGreeting(key: key))
            XCTAssertEqual(outcomes.withLockedValue { $0 }, [.keyData(key)], "\(length)-byte key")
            _ = try channel.finish()
        }
    }

    func testWatcherLeavesWithoutAKeyToo() throws {
        var refusal = ByteBuffer()
        ErrorResponse(code: SQLState(rawValue: "28P01"), message: "password authentication failed for user \"app\"").write(to: &refusal)
        var garbage = ByteBuffer()
        garbage.writeString("K")
        garbage.writeInteger(Int32(2))
        let cases: [(ByteBuffer, BackendKeyScanner.Outcome)] = [
            (BackendKeyScannerTests.serverGreeting(key: nil), .readyWithoutKey),
            (
                refusal,
                .serverError(ErrorResponse(code: SQLState(rawValue: "28P01"), message: "password authentication failed for user \"app\""))
            ),
            (garbage, .gaveUp("message 'K' declares length 2, below 4")),
        ]
        for (bytes, expected) in cases {
            let outcomes = NIOLockedValueBox<[BackendKeyScanner.Outcome]>([])
            let channel = try self.watched(outcomes)
            self.send(to: channel, bytes)
            self.send(to: channel, ByteBuffer(string: "later bytes"))
            XCTAssertEqual(try self.written(channel), [bytes, ByteBuffer(string: "later bytes")])
            XCTAssertEqual(outcomes.withLockedValue { $0 }, [expected])
            XCTAssertFalse(self.hasWatcher(channel))
            _ = try channel.finish()
        }
    }

    func testAWriteAndFlushThatCompletesTheKeyIsFlushed() throws {
        let outcomes = NIOLockedValueBox<[BackendKeyScanner.Outcome]>([])
        let channel = try self.watched(outcomes)
        let greeting = BackendKeyScannerTests.serverGreeting(key: BackendKeyData(processID: 1, secretKey: [1]))
        self.send(to: channel, greeting)
        XCTAssertEqual(try self.written(channel), [greeting], "flushed, though the watcher left during the write")
        _ = try channel.finish()
    }

    // MARK: CancelRoutes

    func testRoutesHoldLiveSessionsOnly() throws {
        let routes = CancelRoutes(logger: Logger(label: "cancel-routes-test"))
        let first = BackendKeyData(processID: 100, secretKey: Array(repeating: 1, count: 32))
        let second = BackendKeyData(processID: 100, secretKey: Array(repeating: 2, count: 32))

        let one = try self.connected()
        try one.pipeline.syncOperations.addHandler(routes.watcher(session: ObjectIdentifier(one), route: self.route))
        let two = try self.connected()
        try two.pipeline.syncOperations.addHandler(
            routes.watcher(session: ObjectIdentifier(two), route: (service: "postgres", node: "db1"))
        )
        XCTAssertNil(routes.route(for: first), "no key before the server sent it")

        self.send(to: one, BackendKeyScannerTests.serverGreeting(key: first))
        self.send(to: two, BackendKeyScannerTests.serverGreeting(key: second))
        XCTAssertEqual(routes.count, 2)
        XCTAssertEqual(routes.route(for: first)?.node, "db2")
        XCTAssertEqual(routes.route(for: second)?.node, "db1", "same process id, another secret: another session")
        XCTAssertNil(routes.route(for: BackendKeyData(processID: 100, secretKey: Array(repeating: 3, count: 32))), "unknown key")
        XCTAssertNil(
            routes.route(for: BackendKeyData(processID: 100, secretKey: Array(repeating: 1, count: 31))),
            "a prefix is not the key"
        )

        routes.forget(session: ObjectIdentifier(one))
        _ = try one.finish()
        XCTAssertNil(routes.route(for: first), "removed when its session ended")
        XCTAssertEqual(routes.route(for: second)?.node, "db1")
        routes.forget(session: ObjectIdentifier(two))
        _ = try two.finish()
        XCTAssertEqual(routes.count, 0)
    }

    func testACollidingKeyRoutesToTheNewerSessionAndSurvivesTheOlderClosing() throws {
        let routes = CancelRoutes(logger: Logger(label: "cancel-routes-test"))
        let key = BackendKeyData(processID: 5, secretKey: [1, 2, 3, 4])
        let older = try self.connected()
        try older.pipeline.syncOperations.addHandler(
            routes.watcher(session: ObjectIdentifier(older), route: (service: "postgres", node: "db1"))
        )
        let newer = try self.connected()
        try newer.pipeline.syncOperations.addHandler(
            routes.watcher(session: ObjectIdentifier(newer), route: (service: "postgres", node: "db2"))
        )
        self.send(to: older, BackendKeyScannerTests.serverGreeting(key: key))
        self.send(to: newer, BackendKeyScannerTests.serverGreeting(key: key))
        XCTAssertEqual(routes.route(for: key)?.node, "db2")
        routes.forget(session: ObjectIdentifier(older))
        _ = try older.finish()
        XCTAssertEqual(routes.route(for: key)?.node, "db2", "the older session's end leaves the newer one's entry")
        routes.forget(session: ObjectIdentifier(newer))
        _ = try newer.finish()
        XCTAssertNil(routes.route(for: key))
    }

    func testSessionWithoutKeyLeavesNoEntry() throws {
        let routes = CancelRoutes(logger: Logger(label: "cancel-routes-test"))
        let channel = try self.connected()
        try channel.pipeline.syncOperations.addHandler(routes.watcher(session: ObjectIdentifier(channel), route: self.route))
        self.send(to: channel, BackendKeyScannerTests.serverGreeting(key: nil))
        XCTAssertEqual(routes.count, 0)
        XCTAssertFalse(self.hasWatcher(channel))
        _ = try channel.finish()
    }
}
