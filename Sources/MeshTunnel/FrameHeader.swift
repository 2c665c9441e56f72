import NIOCore
import NIOHTTP2

/// The nine bytes in front of every HTTP/2 frame (RFC 9113 §4.1): length, type, flags and stream.
/// `TunnelFrameHandler` reads and writes them; payloads are its business.
struct FrameHeader {
    static let size = 9

    /// The frame types a tunnel knows; others are ignored, as RFC 9113 §4.1 asks.
    enum Kind: UInt8 {
        case data = 0x0
        case headers = 0x1
        case priority = 0x2
        case rstStream = 0x3
        case settings = 0x4
        case pushPromise = 0x5
        case ping = 0x6
        case goAway = 0x7
        case windowUpdate = 0x8
        case continuation = 0x9
    }

    struct Flags: OptionSet {
        let rawValue: UInt8
        static let endStream = Flags(rawValue: 0x1)
        /// The same bit as `endStream`, on SETTINGS and PING.
        static let ack = Flags(rawValue: 0x1)
        static let endHeaders = Flags(rawValue: 0x4)
        static let padded = Flags(rawValue: 0x8)
        static let priority = Flags(rawValue: 0x20)
    }

    var length: Int
    /// Raw, so that unknown types can be skipped.
    var type: UInt8
    var flags: Flags
    var streamID: HTTP2StreamID

    init(length: Int, kind: Kind, flags: Flags = [], streamID: HTTP2StreamID) {
        self.init(length: length, type: kind.rawValue, flags: flags, streamID: streamID)
    }

    /// The header at the front of `buffer`, without consuming it; nil when fewer than nine bytes are there.
    static func peek(_ buffer: ByteBuffer) -> FrameHeader? {
        let at = buffer.readerIndex
        guard buffer.readableBytes >= Self.size,
            let high = buffer.getInteger(at: at, as: UInt8.self),
            let low = buffer.getInteger(at: at + 1, as: UInt16.self),
            let type = buffer.getInteger(at: at + 3, as: UInt8.self),
            let flags = buffer.getInteger(at: at + 4, as: UInt8.self),
            let stream = buffer.getInteger(at: at + 5, as: UInt32.self)
        else { return nil }
        return FrameHeader(
            length: Int(high) << 16 | Int(low),
            type: type,
            flags: Flags(rawValue: flags),
            streamID: HTTP2StreamID(Int32(bitPattern: stream & 0x7fff_ffff))
        )
    }

    private init(length: Int, type: UInt8, flags: Flags, streamID: HTTP2StreamID) {
        self.length = length
        self.type = type
        self.flags = flags
        self.streamID = streamID
    }

    var kind: Kind? { Kind(rawValue: self.type) }

    func write(to buffer: inout ByteBuffer) {
        buffer.writeInteger(UInt8(truncatingIfNeeded: self.length >> 16))
        buffer.writeInteger(UInt16(truncatingIfNeeded: self.length))
        buffer.writeInteger(self.type)
        buffer.writeInteger(self.flags.rawValue)
        buffer.writeInteger(UInt32(Int32(self.streamID)))
    }

    /// Writes the length of a frame whose header was written at `start` with a placeholder length.
    static func setLength(_ length: Int, at start: Int, in buffer: inout ByteBuffer) {
        buffer.setInteger(UInt8(truncatingIfNeeded: length >> 16), at: start)
        buffer.setInteger(UInt16(truncatingIfNeeded: length), at: start + 1)
    }
}
