import NIOCore

/// The key that identifies a backend session for cancellation: sent by the server in BackendKeyData
/// ('K') and repeated by the client in a CancelRequest. Protocol 3.0 keys are 4 bytes; 3.2 keys are
/// 1 to 256 bytes.
public struct BackendKeyData: Sendable, Hashable, CustomStringConvertible {
    public var processID: Int32
    public var secretKey: [UInt8]

    public init(processID: Int32, secretKey: [UInt8]) {
        self.processID = processID
        self.secretKey = secretKey
    }

    /// Never prints the secret: the key is a capability to cancel someone else's query.
    public var description: String { "backend \(self.processID) (\(self.secretKey.count)-byte key)" }

    /// The CancelRequest a client sends for this key.
    public func writeCancelRequest(to buffer: inout ByteBuffer) {
        buffer.writeInteger(Int32(12 + self.secretKey.count))
        buffer.writeInteger(PostgresProtocol.cancelRequestCode)
        buffer.writeInteger(self.processID)
        buffer.writeBytes(self.secretKey)
    }

    /// The 'K' message a server sends for this key.
    public func writeMessage(to buffer: inout ByteBuffer) {
        buffer.writeInteger(UInt8(ascii: "K"))
        buffer.writeInteger(Int32(8 + self.secretKey.count))
        buffer.writeInteger(self.processID)
        buffer.writeBytes(self.secretKey)
    }
}
