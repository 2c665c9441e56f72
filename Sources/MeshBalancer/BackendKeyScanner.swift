import NIOCore

/// Watches the server-to-client byte stream of a new session, without consuming it, until the
/// server has sent BackendKeyData ('K'), become ready without one ('Z'), or refused the session ('E').
/// It frames messages (`type`, `Int32 length`, body) and keeps only a 5-byte header and the body of
/// a 'K' or 'E' message, so its memory is bounded whatever the server sends.
public struct BackendKeyScanner: Sendable {
    /// Bytes examined before giving up: authentication and ParameterStatus messages come to a few KiB.
    public static let maxScannedBytes = 1 << 20
    /// Longest 'E' body kept to report the server's reason; a longer one is reported without it.
    public static let maxErrorBodyLength = 8 * 1024

    /// What the stream has shown so far.
    public enum Outcome: Sendable, Equatable {
        case needMoreData
        /// The session's cancel key.
        case keyData(BackendKeyData)
        /// ReadyForQuery came first: this server sent no key (allowed since protocol 3.2).
        case readyWithoutKey
        /// The server refused the session; nil when its message was too long or malformed to parse.
        case serverError(ErrorResponse?)
        /// The stream is not framed as PostgreSQL messages, or no key came within the byte bound.
        case gaveUp(String)
    }

    private enum State: Sendable {
        case header([UInt8])
        case skipping(remaining: Int)
        case collecting(type: UInt8, body: [UInt8], length: Int)
        case finished(Outcome)
    }

    private var state: State = .header([])
    private var scanned = 0

    public init() {}

    /// Examines `bytes`, the next chunk of the server's stream; returns `.needMoreData` until an
    /// outcome is known, then that outcome for every later call.
    public mutating func scan(_ bytes: ByteBuffer) -> Outcome {
        var input = bytes
        while input.readableBytes > 0 {
            if case .finished(let outcome) = self.state { return outcome }
            let before = input.readableBytes
            self.step(&input)
            self.scanned += before - input.readableBytes
            if self.scanned > Self.maxScannedBytes, !self.isFinished {
                self.state = .finished(.gaveUp("no BackendKeyData within \(Self.maxScannedBytes) bytes"))
            }
        }
        if case .finished(let outcome) = self.state { return outcome }
        return .needMoreData
    }

    private var isFinished: Bool {
        if case .finished = self.state { return true }
        return false
    }

    /// Consumes what the current state can use from `input` and makes the one transition it leads to.
    private mutating func step(_ input: inout ByteBuffer) {
        switch self.state {
        case .finished:
            input.moveReaderIndex(forwardBy: input.readableBytes)

        case .header(var header):
            let take = min(5 - header.count, input.readableBytes)
            header += input.readBytes(length: take)!
            guard header.count == 5 else {
                self.state = .header(header)
                return
            }
            let type = header[0]
            let length = Int(Int32(bigEndian: header[1...].withUnsafeBytes { $0.loadUnaligned(as: Int32.self) }))
            self.state = Self.afterHeader(type: type, length: length)

        case .skipping(let remaining):
            let take = min(remaining, input.readableBytes)
            input.moveReaderIndex(forwardBy: take)
            self.state = take == remaining ? .header([]) : .skipping(remaining: remaining - take)

        case .collecting(let type, var body, let length):
            let take = min(length - body.count, input.readableBytes)
            body += input.readBytes(length: take)!
            guard body.count == length else {
                self.state = .collecting(type: type, body: body, length: length)
                return
            }
            self.state = .finished(Self.outcome(type: type, body: body))
        }
    }

    /// Where a message header leads: its body is kept ('K', 'E'), skipped, or not needed at all ('Z').
    private static func afterHeader(type: UInt8, length: Int) -> State {
        guard length >= 4 else {
            return .finished(.gaveUp("message '\(Self.printable(type))' declares length \(length), below 4"))
        }
        let bodyLength = length - 4
        switch type {
        case UInt8(ascii: "K"):
            guard (5...(4 + PostgresProtocol.maxCancelKeyLength)).contains(bodyLength) else {
                return .finished(.gaveUp("BackendKeyData with a \(bodyLength)-byte body"))
            }
            return .collecting(type: type, body: [], length: bodyLength)
        case UInt8(ascii: "E"):
            guard bodyLength <= Self.maxErrorBodyLength else { return .finished(.serverError(nil)) }
            return bodyLength == 0 ? .finished(.serverError(nil)) : .collecting(type: type, body: [], length: bodyLength)
        case UInt8(ascii: "Z"):
            return .finished(.readyWithoutKey)
        default:
            return bodyLength == 0 ? .header([]) : .skipping(remaining: bodyLength)
        }
    }

    private static func outcome(type: UInt8, body: [UInt8]) -> Outcome {
        var buffer = ByteBuffer(bytes: body)
        if type == UInt8(ascii: "K") {
            let processID = buffer.readInteger(as: Int32.self)!
            return .keyData(BackendKeyData(processID: processID, secretKey: buffer.readBytes(length: buffer.readableBytes)!))
        }
        return .serverError(ErrorResponse(body: buffer))
    }

    private static func printable(_ type: UInt8) -> String {
        (0x20..<0x7F).contains(type) ? String(UnicodeScalar(type)) : "\\x" + String(type, radix: 16)
    }
}
