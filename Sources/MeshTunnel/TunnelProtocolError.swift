import NIOHTTP2

/// A peer broke HTTP/2 on a tunnel: `TunnelFrameHandler` sent GOAWAY with `code` and closes it.
struct TunnelProtocolError: Error, CustomStringConvertible {
    let code: HTTP2ErrorCode
    let reason: String

    var description: String { "the peer broke HTTP/2: \(self.reason) (we sent GOAWAY \(self.code.rfcName))" }
}
