import Logging
import MeshBalancer
import MeshTestSupport
import NIOConcurrencyHelpers
import NIOCore
import NIOEmbedded
import XCTest

/// The front door on an EmbeddedChannel: 'N' to negotiation requests, routing, the StartupMessage
/// passed on unchanged to what `bridge` added, refusals as ErrorResponses, cancels, timeouts.
final class FrontDoorHandlerTests: XCTestCase {
    /// What the handler asked of its session.
    final class Calls: Sendable {
        let routed = NIOLockedValueBox<[StartupMessage]>([])
        let bridged = NIOLockedValueBox<[String]>([])
        let cancelled = NIOLockedValueBox<[BackendKeyData]>([])
    }

    /// Stands in for the splice that `MeshNode.bridge` adds: records what reaches the end of the pipeline.
    final class Splice: ChannelInboundHandler, Sendable {
        typealias InboundIn = ByteBuffer
        let received = NIOLockedValueBox<ByteBuffer>(ByteBuffer())
        let readCompletes = NIOLockedValueBox(0)

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            var bytes = self.unwrapInboundIn(data)
            self.received.withLockedValue { received in _ = received.writeBuffer(&bytes) }
        }

        func channelReadComplete(context: ChannelHandlerContext) {
            self.readCompletes.withLockedValue { count in count += 1 }
        }
    }

    struct Unreachable: Error, CustomStringConvertible {
        var description: String { "no tunnel to db2 is up" }
    }

    let calls = Calls()
    let splice = Splice()

    func makeChannel(
        route: Result<FrontDoorHandler.Route, ErrorResponse> = .success((service: "postgres", node: "db2")),
        bridgeFails: Bool = false
    ) throws -> EmbeddedChannel {
        let calls = self.calls
        let splice = self.splice
        let channel = EmbeddedChannel()
        let session = ScriptedSession(
            channel: channel,
            route: { message in
                calls.routed.withLockedValue { $0.append(message) }
                return route
            },
            bridge: { channel, route in
                if bridgeFails { throw Unreachable() }
                calls.bridged.withLockedValue { $0.append("\(route.service)@\(route.node)") }
                try channel.pipeline.syncOperations.addHandler(splice)
            },
            cancel: { key in calls.cancelled.withLockedValue { $0.append(key) } }
        )
        let handler = FrontDoorHandler(session: session, logger: Logger(label: "front-door-test"))
        try channel.pipeline.syncOperations.addHandler(handler)
        try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 6432)).wait()
        return channel
    }

    func testSSLThenStartupIsPassedOnUnchanged() throws {
        let channel = try self.makeChannel()
        try channel.writeInbound(PostgresWire.request(PostgresProtocol.sslRequestCode))
        XCTAssertEqual(try PostgresWire.readOutbound(channel), ByteBuffer(string: "N"))
        XCTAssertTrue(self.calls.routed.withLockedValue { $0 }.isEmpty)

        // The StartupMessage and a pipelined byte after it arrive in one read.
        var bytes = PostgresWire.appStartup()
        bytes.writeString("p")
        try channel.writeInbound(bytes)
        XCTAssertEqual(self.calls.routed.withLockedValue { $0.map(\.user) }, ["app"])
        XCTAssertEqual(self.calls.bridged.withLockedValue { $0 }, ["postgres@db2"])
        XCTAssertEqual(self.splice.received.withLockedValue { $0 }, bytes, "the SSLRequest is ours; the rest goes on unchanged")
        XCTAssertGreaterThanOrEqual(self.splice.readCompletes.withLockedValue { $0 }, 1, "the splice is told the read is complete")
        XCTAssertThrowsError(try channel.pipeline.syncOperations.handler(type: FrontDoorHandler.self), "removed itself")

        // Later bytes go straight to the splice.
        try channel.writeInbound(ByteBuffer(string: "Q"))
        XCTAssertEqual(self.splice.received.withLockedValue { $0.readableBytes }, bytes.readableBytes + 1)
        XCTAssertEqual(try PostgresWire.readOutbound(channel).readableBytes, 0)
        XCTAssertTrue(channel.isActive)
        _ = try channel.finish()
    }

    func testGSSThenSSLThenStartupByteByByte() throws {
        let channel = try self.makeChannel()
        var all = PostgresWire.request(PostgresProtocol.gssEncRequestCode)
        all.writeImmutableBuffer(PostgresWire.request(PostgresProtocol.sslRequestCode))
        all.writeImmutableBuffer(PostgresWire.appStartup())
        for index in 0..<all.readableBytes {
            try channel.writeInbound(all.getSlice(at: index, length: 1)!)
            let routed = self.calls.routed.withLockedValue { $0.count }
            XCTAssertEqual(routed, index == all.readableBytes - 1 ? 1 : 0, "byte \(index)")
        }
        XCTAssertEqual(try PostgresWire.readOutbound(channel), ByteBuffer(string: "NN"))
        XCTAssertEqual(self.splice.received.withLockedValue { $0 }, PostgresWire.appStartup())
        _ = try channel.finish()
    }

    func testTooManyNegotiationsAreRefused() throws {
        let channel = try self.makeChannel()
        for _ in 0..<3 { try channel.writeInbound(PostgresWire.request(PostgresProtocol.sslRequestCode)) }
        var out = try PostgresWire.readOutbound(channel)
        XCTAssertEqual(out.readString(length: 2), "NN")
        XCTAssertEqual(PostgresWire.errorResponse(in: out)?.code, .protocolViolation)
        XCTAssertFalse(channel.isActive)
    }

    func testRefusalIsAnErrorResponseThenClose() throws {
        let refusal = ErrorResponse(
            code: .cannotConnectNow,
            message: #"tunnelmesh: no primary available for "pg" (db1: down since 12:01:03, db2: standby)"#
        )
        let channel = try self.makeChannel(route: .failure(refusal))
        try channel.writeInbound(PostgresWire.appStartup())
        XCTAssertEqual(PostgresWire.errorResponse(in: try PostgresWire.readOutbound(channel)), refusal)
        XCTAssertFalse(channel.isActive)
        XCTAssertTrue(self.calls.bridged.withLockedValue { $0 }.isEmpty)
        XCTAssertEqual(self.splice.received.withLockedValue { $0.readableBytes }, 0)
    }

    func testUnreachableNodeIsConnectionFailure() throws {
        let channel = try self.makeChannel(bridgeFails: true)
        try channel.writeInbound(PostgresWire.appStartup())
        let error = try XCTUnwrap(PostgresWire.errorResponse(in: try PostgresWire.readOutbound(channel)))
        XCTAssertEqual(error.code, .connectionFailure)
        XCTAssertEqual(error.message, #"tunnelmesh: cannot reach "postgres" on db2: no tunnel to db2 is up"#)
        XCTAssertFalse(channel.isActive)
    }

    func testBadFirstPacketsAreRefusedWithoutRouting() throws {
        var giant = ByteBuffer()
        giant.writeInteger(UInt32(1 << 30))
        let cases: [(ByteBuffer, SQLState)] = [
            (giant, .protocolViolation),
            (ByteBuffer(string: "GET / HTTP/1.1\r\n\r\n"), .protocolViolation),
            (PostgresWire.startup(["user": "app"], major: 2, minor: 0), .featureNotSupported),
            (ByteBuffer(bytes: [0, 0, 0, 9, 0, 3, 0, 0, 1]), .protocolViolation),
        ]
        for (input, code) in cases {
            let channel = try self.makeChannel()
            try channel.writeInbound(input)
            XCTAssertEqual(PostgresWire.errorResponse(in: try PostgresWire.readOutbound(channel))?.code, code, "\(input)")
            XCTAssertFalse(channel.isActive)
        }
        XCTAssertTrue(self.calls.routed.withLockedValue { $0 }.isEmpty)
    }

    func testCancelRequestIsHandedOverAndClosed() throws {
        let channel = try self.makeChannel()
        let key = BackendKeyData(processID: 4711, secretKey: Array(repeating: 0x5A, count: 32))
        var bytes = ByteBuffer()
        key.writeCancelRequest(to: &bytes)
        try channel.writeInbound(bytes)
        XCTAssertEqual(self.calls.cancelled.withLockedValue { $0 }, [key])
        XCTAssertEqual(try PostgresWire.readOutbound(channel).readableBytes, 0, "PostgreSQL answers a cancel with nothing")
        XCTAssertFalse(channel.isActive)
        XCTAssertTrue(self.calls.routed.withLockedValue { $0 }.isEmpty)
    }

    func testSilentClientIsClosedAfterTheStartupTimeout() throws {
        let channel = try self.makeChannel()
        try channel.writeInbound(ByteBuffer(bytes: [0, 0]))
        channel.embeddedEventLoop.advanceTime(by: .seconds(59))
        XCTAssertTrue(channel.isActive)
        channel.embeddedEventLoop.advanceTime(by: .seconds(1))
        XCTAssertFalse(channel.isActive)
    }

    func testRoutedConnectionOutlivesTheStartupTimeout() throws {
        let channel = try self.makeChannel()
        try channel.writeInbound(PostgresWire.appStartup())
        channel.embeddedEventLoop.advanceTime(by: .seconds(120))
        XCTAssertTrue(channel.isActive)
        _ = try channel.finish()
    }
}
