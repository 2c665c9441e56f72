import Foundation
import MeshBalancer
import MeshTestSupport
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import XCTest

/// The ErrorResponse the front door sends: exact bytes, parsing back, and what real psql shows.
final class ErrorResponseTests: XCTestCase {
    func testWireBytes() {
        let response = ErrorResponse(code: .cannotConnectNow, message: "no")
        var expected: [UInt8] = [UInt8(ascii: "E")]
        let fields = Array("SFATAL\0VFATAL\0C57P03\0Mno\0\0".utf8)
        expected += [0, 0, 0, UInt8(4 + fields.count)] + fields
        XCTAssertEqual(Array(response.buffer().readableBytesView), expected)
    }

    func testRoundTripWithDetailAndHint() throws {
        let response = ErrorResponse(
            code: .connectionFailure,
            message: "tunnel to db1 is down",
            detail: "since 12:01:03",
            hint: "check meshctl peers"
        )
        var buffer = response.buffer()
        XCTAssertEqual(buffer.readInteger(as: UInt8.self), UInt8(ascii: "E"))
        let length = try XCTUnwrap(buffer.readInteger(as: Int32.self))
        XCTAssertEqual(Int(length) - 4, buffer.readableBytes)
        XCTAssertEqual(ErrorResponse(body: buffer), response)
    }

    func testNULInsideMessageCannotEndTheFieldEarly() {
        let response = ErrorResponse(code: .protocolViolation, message: "bad\0name")
        var buffer = response.buffer()
        buffer.moveReaderIndex(forwardBy: 5)
        XCTAssertEqual(ErrorResponse(body: buffer)?.message, "bad name")
    }

    func testMalformedBodiesAreNotParsed() {
        XCTAssertNil(ErrorResponse(body: ByteBuffer(bytes: Array("SFATAL\0Mno\0\0".utf8))), "no code")
        XCTAssertNil(ErrorResponse(body: ByteBuffer(bytes: Array("SFATAL\0C57P03\0Mno".utf8))), "unterminated")
        XCTAssertNil(ErrorResponse(body: ByteBuffer(bytes: Array("SFATAL\0C57P03\0Mno\0\0xx".utf8))), "trailing bytes")
    }

    /// Real psql, with sslmode=prefer: the server answers SSLRequest with 'N', reads the StartupMessage
    /// and refuses with our ErrorResponse; psql must print the message as PostgreSQL's own FATAL.
    func testPsqlDisplaysTheRefusal() throws {
        let psql = try PostgresCluster.binDirectory() + "/psql"
        let message = "tunnelmesh: no primary available for \"pg\" (db1: down since 12:01:03, db2: standby)"
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        defer { try? group.syncShutdownGracefully() }
        let seen = NIOLockedValueBox<[StartupPacket]>([])
        let server = try ServerBootstrap(group: group)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(
                        RefusingFrontDoor(refusal: ErrorResponse(code: .cannotConnectNow, message: message), seen: seen)
                    )
                }
            }
            .bind(host: "127.0.0.1", port: 0).wait()
        defer { try? server.close().wait() }
        let port = try XCTUnwrap(server.localAddress?.port)

        let result = try Command.run(
            psql,
            ["host=127.0.0.1 port=\(port) user=app dbname=shop sslmode=prefer gssencmode=disable connect_timeout=5", "-c", "SELECT 1"],
            environment: ["PATH": "/usr/bin:/bin", "PGAPPNAME": "errtest"],
            timeout: .seconds(15)
        )
        XCTAssertEqual(result.status, 2, result.stderr)
        XCTAssertTrue(result.stderr.contains("FATAL:  \(message)"), result.stderr)
        let packets = seen.withLockedValue { $0 }
        XCTAssertEqual(packets.first, .sslRequest)
        guard case .startup(let startup) = packets.last else { return XCTFail("no startup seen: \(packets)") }
        XCTAssertEqual(startup.user, "app")
        XCTAssertEqual(startup.database, "shop")
        XCTAssertEqual(startup["application_name"], "errtest")
    }
}

/// Test server: answers SSL/GSS requests with 'N' and any StartupMessage with the given refusal.
private final class RefusingFrontDoor: ChannelInboundHandler, @unchecked Sendable {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    let refusal: ErrorResponse
    let seen: NIOLockedValueBox<[StartupPacket]>
    var buffered = ByteBuffer()

    init(refusal: ErrorResponse, seen: NIOLockedValueBox<[StartupPacket]>) {
        self.refusal = refusal
        self.seen = seen
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var bytes = self.unwrapInboundIn(data)
        self.buffered.writeBuffer(&bytes)
        while case .packet(let packet)? = try? StartupPacket.read(from: &self.buffered) {
            self.seen.withLockedValue { $0.append(packet) }
            switch packet {
            case .sslRequest, .gssEncRequest:
                context.writeAndFlush(self.wrapOutboundOut(ByteBuffer(string: "N")), promise: nil)
            case .startup, .cancelRequest:
                context.writeAndFlush(self.wrapOutboundOut(self.refusal.buffer())).assumeIsolated().whenComplete { _ in
                    context.close(promise: nil)
                }
                return
            }
        }
    }
}
