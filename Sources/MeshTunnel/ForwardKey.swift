import MeshConfig

/// Identifies a forward across reloads: a forward is the same forward when all of it is the same
/// (address, service and node); any change makes it a removed forward plus an added one.
struct ForwardKey: Hashable, Sendable, CustomStringConvertible {
    var listen: Endpoint
    var service: String
    var node: String

    init(_ forward: ForwardSettings) {
        self.listen = forward.listen
        self.service = forward.service
        self.node = forward.node
    }

    var description: String { "\(self.listen) -> \(self.service)@\(self.node)" }
}
