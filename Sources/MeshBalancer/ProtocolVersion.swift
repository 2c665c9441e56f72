import NIOCore

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
