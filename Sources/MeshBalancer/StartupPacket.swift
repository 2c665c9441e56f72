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
                request: "CancelRequest", length: length, expected: "13...\(12 + PostgresProtocol.maxCancelKeyLength)")
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

/// A frontend protocol version as sent in a StartupMessage: major in the high 16 bits.
public struct ProtocolVersion: Sendable, Hashable, CustomStringConvertible {
    public var major: UInt16
    public var minor: UInt16

    public init(major: UInt16, minor: UInt16) {
        self.major = major
        self.minor = minor
    }

    init(_ code: UInt32) {
        self.init(major: UInt16(code >> 16), minor: UInt16(code & 0xFFFF))
    }

    public var code: UInt32 { UInt32(self.major) << 16 | UInt32(self.minor) }
    public var description: String { "\(self.major).\(self.minor)" }
}

/// A StartupMessage: the protocol version and the parameters (user, database, options, ...).
public struct StartupMessage: Sendable, Equatable {
    public var version: ProtocolVersion
    /// Name/value pairs in the order the client sent them.
    public var parameters: [(name: String, value: String)]

    public init(version: ProtocolVersion, parameters: [(name: String, value: String)]) {
        self.version = version
        self.parameters = parameters
    }

    public subscript(name: String) -> String? {
        self.parameters.first { $0.name == name }?.value
    }

    /// `user` and `database` (which defaults to the user, as PostgreSQL does).
    public var user: String? { self["user"] }
    public var database: String? { self["database"] ?? self.user }

    /// Parses `name\0value\0 ... \0`, the layout PostgreSQL's ProcessStartupPacket accepts.
    init(version: ProtocolVersion, parameterBytes: ByteBuffer) throws(StartupPacketError) {
        var bytes = parameterBytes
        guard bytes.getInteger(at: bytes.writerIndex - 1, as: UInt8.self) == 0 else {
            throw .malformedStartup("the parameter list does not end with a NUL terminator")
        }
        var parameters: [(name: String, value: String)] = []
        while true {
            guard let name = bytes.readNullTerminatedString() else {
                throw .malformedStartup("the parameter list does not end with an empty name")
            }
            if name.isEmpty { break }
            guard let value = bytes.readNullTerminatedString() else {
                throw .malformedStartup("parameter \"\(name)\" has no value")
            }
            parameters.append((name, value))
        }
        guard bytes.readableBytes == 0 else {
            throw .malformedStartup("\(bytes.readableBytes) bytes follow the terminator")
        }
        self.init(version: version, parameters: parameters)
    }

    /// The wire form, for clients in tests and for re-sending.
    public func write(to buffer: inout ByteBuffer) {
        let start = buffer.writerIndex
        buffer.writeInteger(Int32(0))
        buffer.writeInteger(self.version.code)
        for (name, value) in self.parameters {
            buffer.writeNullTerminatedString(name)
            buffer.writeNullTerminatedString(value)
        }
        buffer.writeInteger(UInt8(0))
        buffer.setInteger(Int32(buffer.writerIndex - start), at: start)
    }

    public static func == (lhs: StartupMessage, rhs: StartupMessage) -> Bool {
        lhs.version == rhs.version && lhs.parameters.elementsEqual(rhs.parameters) { $0 == $1 }
    }
}

/// Why the first packet on a front-door connection was rejected.
public enum StartupPacketError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The length prefix is outside what PostgreSQL accepts (8...MAX_STARTUP_PACKET_LENGTH).
    case lengthOutOfRange(declared: Int64)
    /// SSLRequest, GSSENCRequest or CancelRequest with a length its layout cannot have.
    case requestLength(request: String, length: Int, expected: String)
    /// A StartupMessage whose major version is not 3.
    case unsupportedProtocol(ProtocolVersion)
    /// A StartupMessage whose parameter list is not `name\0value\0...\0`.
    case malformedStartup(String)

    public var description: String {
        switch self {
        case .lengthOutOfRange(let declared):
            "invalid length of startup packet: \(declared) bytes declared, PostgreSQL allows 8 to "
                + "\(PostgresProtocol.maxStartupPacketLength) (is this a PostgreSQL client?)"
        case .requestLength(let request, let length, let expected):
            "invalid length of \(request): \(length) bytes, expected \(expected)"
        case .unsupportedProtocol(let version):
            "unsupported frontend protocol \(version): the balancer supports 3.0 and later 3.x"
        case .malformedStartup(let problem):
            "invalid startup packet layout: \(problem)"
        }
    }

    /// The ErrorResponse PostgreSQL itself would send for this problem.
    public var errorResponse: ErrorResponse {
        switch self {
        case .unsupportedProtocol:
            ErrorResponse(code: .featureNotSupported, message: "tunnelmesh: \(self)")
        default:
            ErrorResponse(code: .protocolViolation, message: "tunnelmesh: \(self)")
        }
    }
}
