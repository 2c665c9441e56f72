import NIOCore
import NIOHPACK
import NIOHTTP2

/// Stream refused by the serving node.
public struct StreamRefusedError: Error, CustomStringConvertible {
    public var peer: String
    public var service: String
    public var status: Int
    public var reason: String?
    public var description: String {
        "\(self.peer) refused stream to \"\(self.service)\": \(self.status) \(self.reason ?? "")"
    }
}
