import MeshBalancer
import NIOCore
import NIOEmbedded

/// PostgreSQL front-end packets as a client sends them, for the front-door tests (in-process and
/// against real clients alike).
public enum PostgresWire {
    /// An 8-byte request with no body: SSLRequest, GSSENCRequest (`PostgresProtocol.*Code`).
    public static func request(_ code: UInt32) -> ByteBuffer {
        var buffer = ByteBuffer()
        buffer.writeInteger(Int32(8))
        buffer.writeInteger(code)
        return buffer
    }

    public static func startup(_ parameters: KeyValuePairs<String, String>, major: UInt16 = 3, minor: UInt16 = 0) -> ByteBuffer {
        var buffer = ByteBuffer()
        StartupMessage(version: ProtocolVersion(major: major, minor: minor), parameters: parameters.map { ($0.key, $0.value) })
            .write(to: &buffer)
        return buffer
    }

    /// The StartupMessage the front-door tests send: user app, database shop, protocol 3.2.
    public static func appStartup() -> ByteBuffer {
        self.startup(["user": "app", "database": "shop"], minor: 2)
    }

    /// Everything the channel has written so far, in one buffer.
    public static func readOutbound(_ channel: EmbeddedChannel) throws -> ByteBuffer {
        var all = ByteBuffer()
        while var part = try channel.readOutbound(as: ByteBuffer.self) { all.writeBuffer(&part) }
        return all
    }

    /// The ErrorResponse that `bytes` are exactly (type byte, length, fields), else nil.
    public static func errorResponse(in bytes: ByteBuffer) -> ErrorResponse? {
        var bytes = bytes
        guard bytes.readInteger(as: UInt8.self) == UInt8(ascii: "E"), let length = bytes.readInteger(as: Int32.self),
            Int(length) - 4 == bytes.readableBytes
        else { return nil }
        return ErrorResponse(body: bytes)
    }
}
