import MeshBalancer
import NIOCore

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
}
