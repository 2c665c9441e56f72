import Logging
import MeshConfig
import MeshTLS
import NIOCore
import NIOHPACK
import NIOHTTP2

/// The peer reset a stream (or it closed with an error).
public struct StreamResetError: Error, CustomStringConvertible {
    public var peer: String
    public var service: String
    public var code: HTTP2ErrorCode
    public var description: String { "stream to \"\(self.service)\" on \(self.peer) was reset (\(self.code.rfcName))" }
}
