import NIOCore

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
