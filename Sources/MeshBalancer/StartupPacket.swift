import NIOCore

/// The first packet a PostgreSQL client sends on a new connection, as the front door reads it.
///
/// Every first packet is `Int32 length` (itself included) then `Int32 code`: a request code for
/// SSLRequest, GSSENCRequest and CancelRequest, or the protocol version of a StartupMessage.
public enum StartupPacket: Sendable, Equatable {
    /// The client asks for TLS; it waits for one byte, `S` or `N`, then sends its next first packet.
    case sslRequest
    /// The client asks for GSSAPI encryption; answered like SSLRequest.
    case gssEncRequest
    /// The client wants the query running in the session identified by this key cancelled.
    case cancelRequest(BackendKeyData)
    /// The client starts a session; it is forwarded to PostgreSQL unchanged.
    case startup(StartupMessage)

    /// What reading a buffer gave: a whole packet (its bytes consumed), or not enough bytes yet.
    public enum ReadResult: Sendable, Equatable {
        case needMoreData
        case packet(StartupPacket)
    }

    /// Reads one first packet from the front of `buffer`. On `.packet` the packet's bytes have been
    /// consumed; on `.needMoreData` the buffer is untouched. Throws as soon as the bytes seen cannot
    /// start a valid packet, so a caller never holds more than `maxStartupPacketLength` bytes: the
    /// length prefix is checked before the body is awaited.
    public static func read(from buffer: inout ByteBuffer) throws(StartupPacketError) -> ReadResult {
        guard let length = buffer.getInteger(at: buffer.readerIndex, as: Int32.self) else { return .needMoreData }
        guard length >= 8, length <= PostgresProtocol.maxStartupPacketLength else {
            throw .lengthOutOfRange(declared: Int64(length))
        }
        guard let code = buffer.getInteger(at: buffer.readerIndex + 4, as: UInt32.self) else { return .needMoreData }
        // Requests of a fixed size are judged on their length before their body arrives.
        try self.checkLength(Int(length), code: code)
        guard buffer.readableBytes >= Int(length) else { return .needMoreData }

        let body = buffer.getSlice(at: buffer.readerIndex + 8, length: Int(length) - 8)!
        let packet = try self.decode(code: code, body: body)
        buffer.moveReaderIndex(forwardBy: Int(length))
        return .packet(packet)
    }

    private static func checkLength(_ length: Int, code: UInt32) throws(StartupPacketError) {
        switch code {
        case PostgresProtocol.sslRequestCode where length != 8:
            throw .requestLength(request: "SSLRequest", length: length, expected: "8")
        case PostgresProtocol.gssEncRequestCode where length != 8:
            throw .requestLength(request: "GSSENCRequest", length: length, expected: "8")
        case PostgresProtocol.cancelRequestCode
        where length < 12 + 1 || length > 12 + PostgresProtocol.maxCancelKeyLength:
            throw .requestLength(
                request: "CancelRequest",
                length: length,
                expected: "13...\(12 + PostgresProtocol.maxCancelKeyLength)"
            )
        case PostgresProtocol.sslRequestCode, PostgresProtocol.gssEncRequestCode, PostgresProtocol.cancelRequestCode:
            return
        default:
            let version = ProtocolVersion(code)
            guard version.major == 3 else { throw .unsupportedProtocol(version) }
            // The smallest StartupMessage is the version and the terminating NUL.
            guard length >= 9 else { throw .malformedStartup("no parameters and no terminator") }
        }
    }

    private static func decode(code: UInt32, body: ByteBuffer) throws(StartupPacketError) -> StartupPacket {
        var body = body
        switch code {
        case PostgresProtocol.sslRequestCode:
            return .sslRequest
        case PostgresProtocol.gssEncRequestCode:
            return .gssEncRequest
        case PostgresProtocol.cancelRequestCode:
            let processID = body.readInteger(as: Int32.self)!
            let secret = body.readBytes(length: body.readableBytes)!
            return .cancelRequest(BackendKeyData(processID: processID, secretKey: secret))
        default:
            return .startup(try StartupMessage(version: ProtocolVersion(code), parameterBytes: body))
        }
    }
}
