import MeshTLS
import NIOCore
import NIOHTTP2

/// The tunnel was declared dead because the peer stopped answering PINGs.
public struct TunnelDeadError: Error, CustomStringConvertible {
    public var missed: Int
    public var interval: TimeAmount
    public var description: String {
        "no PING reply for \((self.interval * Int64(self.missed)).text) (\(self.missed) missed)"
    }
}
