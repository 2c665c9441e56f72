import MeshBalancer
import MeshTestSupport
import NIOCore
import XCTest

/// The first packet of a front-door connection: every kind, every split, every malformation.
final class StartupPacketTests: XCTestCase {
    func testSSLAndGSSENCRequests() throws {
        XCTAssertEqual(try Self.readAll(PostgresWire.request(80_877_103)), [.sslRequest])
        XCTAssertEqual(try Self.readAll(PostgresWire.request(80_877_104)), [.gssEncRequest])
    }

    func testSSLRequestThenStartupInOneBuffer() throws {
        var bytes = PostgresWire.request(PostgresProtocol.sslRequestCode)
        bytes.writeImmutableBuffer(PostgresWire.startup(["user": "app", "database": "shop"]))
        let packets = try Self.readAll(bytes)
        XCTAssertEqual(packets.count, 2)
        XCTAssertEqual(packets.first, .sslRequest)
        guard case .startup(let message) = packets.last else { return XCTFail("not a startup: \(packets)") }
        XCTAssertEqual(message.user, "app")
        XCTAssertEqual(message.database, "shop")
    }

    func testCancelRequestProtocol30FourByteKey() throws {
        let key = BackendKeyData(processID: 4242, secretKey: [0xDE, 0xAD, 0xBE, 0xEF])
        var bytes = ByteBuffer()
        key.writeCancelRequest(to: &bytes)
        XCTAssertEqual(bytes.readableBytes, 16)
        XCTAssertEqual(try Self.readAll(bytes), [.cancelRequest(key)])
    }

    func testCancelRequestProtocol32VariableKeys() throws {
        for length in [1, 32, 100, 256] {
            let key = BackendKeyData(processID: -7, secretKey: (0..<length).map { UInt8(truncatingIfNeeded: $0 &* 31) })
            var bytes = ByteBuffer()
            key.writeCancelRequest(to: &bytes)
            XCTAssertEqual(try Self.readAll(bytes), [.cancelRequest(key)], "key of \(length) bytes")
        }
    }

    func testCancelRequestKeyLengthOutOfRange() {
        for length in [0, 257] {
            var bytes = ByteBuffer()
            BackendKeyData(processID: 1, secretKey: Array(repeating: 9, count: length)).writeCancelRequest(to: &bytes)
            XCTAssertThrowsError(try Self.readAll(bytes)) { error in
                XCTAssertEqual(
                    error as? StartupPacketError,
                    .requestLength(request: "CancelRequest", length: 12 + length, expected: "13...268")
                )
            }
        }
    }

    func testStartupMessageProtocol30And32() throws {
        for minor: UInt16 in [0, 2, 99] {
            let bytes = PostgresWire.startup(["user": "app", "database": "shop", "application_name": "psql"], minor: minor)
            let packets = try Self.readAll(bytes)
            guard case .startup(let message) = packets.first, packets.count == 1 else {
                return XCTFail("3.\(minor): \(packets)")
            }
            XCTAssertEqual(message.version, ProtocolVersion(major: 3, minor: minor))
            XCTAssertEqual(message.parameters.map(\.name), ["user", "database", "application_name"])
            XCTAssertEqual(message["application_name"], "psql")
            // The wire form written back is byte for byte what the client sent (it is forwarded unchanged).
            var rewritten = ByteBuffer()
            message.write(to: &rewritten)
            XCTAssertEqual(rewritten, bytes)
        }
    }

    func testDatabaseDefaultsToUser() throws {
        guard case .startup(let message) = try Self.readAll(PostgresWire.startup(["user": "app"])).first else {
            return XCTFail("no startup")
        }
        XCTAssertEqual(message.database, "app")
    }

    func testUnknownProtocolMajorIsRefused() {
        for (major, minor): (UInt16, UInt16) in [(2, 0), (4, 0), (1234, 5681), (0, 0)] {
            let bytes = PostgresWire.startup(["user": "app"], major: major, minor: minor)
            XCTAssertThrowsError(try Self.readAll(bytes)) { error in
                XCTAssertEqual(
                    error as? StartupPacketError,
                    .unsupportedProtocol(ProtocolVersion(major: major, minor: minor))
                )
            }
            // Refused on the first 8 bytes, before the rest arrives.
            var head = bytes.getSlice(at: 0, length: 8)!
            XCTAssertThrowsError(try StartupPacket.read(from: &head))
        }
        let error = StartupPacketError.unsupportedProtocol(ProtocolVersion(major: 2, minor: 0))
        XCTAssertEqual(error.errorResponse.code, .featureNotSupported)
        XCTAssertTrue(error.errorResponse.message.contains("unsupported frontend protocol 2.0"))
    }

    func testEveryPacketByteByByte() throws {
        var cancel = ByteBuffer()
        BackendKeyData(processID: 3, secretKey: Array(repeating: 7, count: 32)).writeCancelRequest(to: &cancel)
        let packets = [
            PostgresWire.request(PostgresProtocol.sslRequestCode), PostgresWire.request(PostgresProtocol.gssEncRequestCode), cancel,
            PostgresWire.startup(["user": "app", "database": "shop"], minor: 2),
        ]
        for packet in packets {
            var buffer = ByteBuffer()
            for index in 0..<packet.readableBytes {
                buffer.writeInteger(packet.getInteger(at: index, as: UInt8.self)!)
                let before = buffer
                let result = try StartupPacket.read(from: &buffer)
                if index < packet.readableBytes - 1 {
                    XCTAssertEqual(result, .needMoreData, "byte \(index) of \(packet.readableBytes)")
                    XCTAssertEqual(buffer, before, "a partial read must not consume")
                } else {
                    guard case .packet = result else { return XCTFail("last byte gave \(result)") }
                    XCTAssertEqual(buffer.readableBytes, 0)
                }
            }
        }
    }

    func testGiantLengthPrefixRejectedFromFourBytes() {
        for length: UInt32 in [1 << 30, 10_001, 0xFFFF_FFFF, 0x8000_0000] {
            var buffer = ByteBuffer()
            buffer.writeInteger(length)
            XCTAssertThrowsError(try StartupPacket.read(from: &buffer)) { error in
                XCTAssertEqual(error as? StartupPacketError, .lengthOutOfRange(declared: Int64(Int32(bitPattern: length))))
            }
        }
        let message = StartupPacketError.lengthOutOfRange(declared: 1 << 30).description
        XCTAssertTrue(message.contains("1073741824 bytes declared"), message)
    }

    func testLengthBelowEightRejected() {
        for length: Int32 in [0, 4, 7] {
            var buffer = ByteBuffer()
            buffer.writeInteger(length)
            XCTAssertThrowsError(try StartupPacket.read(from: &buffer)) { error in
                XCTAssertEqual(error as? StartupPacketError, .lengthOutOfRange(declared: Int64(length)))
            }
        }
    }

    func testLargestAllowedStartupPacket() throws {
        let filler = String(repeating: "x", count: 10_000 - 8 - "options".count - 3)
        let bytes = PostgresWire.startup(["options": filler])
        XCTAssertEqual(bytes.readableBytes, PostgresProtocol.maxStartupPacketLength)
        guard case .startup(let message) = try Self.readAll(bytes).first else { return XCTFail("not read") }
        XCTAssertEqual(message["options"]?.count, filler.count)
    }

    func testFixedSizeRequestsWithWrongLength() {
        var ssl = ByteBuffer()
        ssl.writeInteger(Int32(12))
        ssl.writeInteger(PostgresProtocol.sslRequestCode)
        XCTAssertThrowsError(try StartupPacket.read(from: &ssl)) { error in
            XCTAssertEqual(error as? StartupPacketError, .requestLength(request: "SSLRequest", length: 12, expected: "8"))
        }
        var gss = ByteBuffer()
        gss.writeInteger(Int32(9))
        gss.writeInteger(PostgresProtocol.gssEncRequestCode)
        XCTAssertThrowsError(try StartupPacket.read(from: &gss))
    }

    func testMalformedParameterLists() {
        let cases: [(body: [UInt8], problem: String)] = [
            (Array("user\0app\0".utf8), "the parameter list does not end with an empty name"),
            (Array("user\0app\0database\0".utf8), "parameter \"database\" has no value"),
            (Array("user\0app\0\0x\0".utf8), "2 bytes follow the terminator"),
            (Array("user\0app".utf8), "the parameter list does not end with a NUL terminator"),
            ([], "no parameters and no terminator"),
        ]
        for (body, problem) in cases {
            var buffer = ByteBuffer()
            buffer.writeInteger(Int32(8 + body.count))
            buffer.writeInteger(ProtocolVersion(major: 3, minor: 0).code)
            buffer.writeBytes(body)
            XCTAssertThrowsError(try StartupPacket.read(from: &buffer)) { error in
                XCTAssertEqual(error as? StartupPacketError, .malformedStartup(problem))
                XCTAssertEqual((error as? StartupPacketError)?.errorResponse.code, .protocolViolation)
            }
        }
    }

    func testEmptyParameterListIsAccepted() throws {
        // PostgreSQL itself then complains that no user was given; that error stays PostgreSQL's.
        XCTAssertEqual(
            try Self.readAll(PostgresWire.startup([:])),
            [.startup(StartupMessage(version: .init(major: 3, minor: 0), parameters: []))]
        )
    }

    func testGarbageFromOtherProtocols() {
        let inputs = [
            Array("GET / HTTP/1.1\r\nHost: x\r\n\r\n".utf8),
            [0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xFC],  // a TLS ClientHello
            Array("SSH-2.0-OpenSSH_9.2\r\n".utf8),
        ]
        for input in inputs {
            var buffer = ByteBuffer(bytes: input)
            XCTAssertThrowsError(try StartupPacket.read(from: &buffer), "\(input)") { error in
                guard case .lengthOutOfRange = error as? StartupPacketError else { return XCTFail("\(error)") }
            }
        }
    }

    // MARK: Builders

    /// Reads packets until the buffer is empty; fails if bytes are left that never complete.
    static func readAll(_ bytes: ByteBuffer) throws -> [StartupPacket] {
        var buffer = bytes
        var packets: [StartupPacket] = []
        for _ in 0..<16 {
            guard buffer.readableBytes > 0 else { return packets }
            guard case .packet(let packet) = try StartupPacket.read(from: &buffer) else { break }
            packets.append(packet)
        }
        XCTFail("\(buffer.readableBytes) bytes left unread")
        return packets
    }
}
