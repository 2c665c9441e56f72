import MeshConfig

/// Identifies a forward across reloads: a forward is the same forward when all of it is the same
/// (address, service and node); any change makes it a removed forward plus an added one.
public struct ForwardKey: Hashable, Sendable, CustomStringConvertible {
    public let listen: Endpoint
    public let service: String
    public let node: String

    init(_ forward: ForwardSettings) {
        self.listen = forward.listen
        self.service = forward.service
        self.node = forward.node
    }

    public var description: String { "\(self.listen) -> \(self.service)@\(self.node)" }
}
