import NIOCore

/// A PostgreSQL ErrorResponse ('E'): what the front door sends instead of dropping a connection it
/// cannot serve, so psql and drivers show a reason; also parsed from a backend's stream.
public struct ErrorResponse: Error, Sendable, Equatable, CustomStringConvertible {
    /// Severity as PostgreSQL spells it (never localized on this side).
    public enum Severity: String, Sendable {
        case error = "ERROR"
        case fatal = "FATAL"
        case panic = "PANIC"
    }

    public var severity: Severity
    public var code: SQLState
    public var message: String
    public var detail: String?
    public var hint: String?

    public init(severity: Severity = .fatal, code: SQLState, message: String, detail: String? = nil, hint: String? = nil) {
        self.severity = severity
        self.code = code
        self.message = message
        self.detail = detail
        self.hint = hint
    }

    public var description: String { "\(self.severity.rawValue) \(self.code.rawValue): \(self.message)" }

    /// Appends the whole message: 'E', Int32 length, then S, V, C, M (and D, H) fields, then NUL.
    public func write(to buffer: inout ByteBuffer) {
        buffer.writeInteger(UInt8(ascii: "E"))
        let lengthAt = buffer.writerIndex
        buffer.writeInteger(Int32(0))
        // 'S' is the (possibly localized) severity clients display, 'V' the fixed one since 9.6.
        var fields: [(UInt8, String)] = [
            (UInt8(ascii: "S"), self.severity.rawValue), (UInt8(ascii: "V"), self.severity.rawValue),
            (UInt8(ascii: "C"), self.code.rawValue), (UInt8(ascii: "M"), self.message),
        ]
        if let detail = self.detail { fields.append((UInt8(ascii: "D"), detail)) }
        if let hint = self.hint { fields.append((UInt8(ascii: "H"), hint)) }
        for (type, value) in fields {
            buffer.writeInteger(type)
            // A NUL inside a value would end the field early and desynchronise the client.
            buffer.writeNullTerminatedString(value.replacingNULs())
        }
        buffer.writeInteger(UInt8(0))
        buffer.setInteger(Int32(buffer.writerIndex - lengthAt), at: lengthAt)
    }

    /// The message as one buffer, ready to write to a client channel.
    public func buffer(allocator: ByteBufferAllocator = ByteBufferAllocator()) -> ByteBuffer {
        var buffer = allocator.buffer(capacity: 64 + self.message.utf8.count)
        self.write(to: &buffer)
        return buffer
    }

    /// Parses the body of an 'E' message (the bytes after the length). Nil when the fields are not
    /// `type value\0 ... \0` or lack severity, code or message.
    public init?(body: ByteBuffer) {
        var body = body
        var fields: [UInt8: String] = [:]
        while let type = body.readInteger(as: UInt8.self), type != 0 {
            guard let value = body.readNullTerminatedString() else { return nil }
            fields[type] = value
        }
        guard body.readableBytes == 0,
            let severityText = fields[UInt8(ascii: "V")] ?? fields[UInt8(ascii: "S")],
            let code = fields[UInt8(ascii: "C")], let message = fields[UInt8(ascii: "M")]
        else { return nil }
        self.init(
            severity: Severity(rawValue: severityText) ?? .error,
            code: SQLState(rawValue: code),
            message: message,
            detail: fields[UInt8(ascii: "D")],
            hint: fields[UInt8(ascii: "H")]
        )
    }
}

extension String {
    fileprivate func replacingNULs() -> String {
        self.contains("\0") ? String(self.map { $0 == "\0" ? " " : $0 }) : self
    }
}
