/// One declared node: where its mesh listener is and where its control socket lives.
public struct NodeSettings: Sendable, Equatable {
    public static let defaultControl = "/run/meshd/control.sock"

    public var name: String
    /// The TCP address peers dial and this node's tunnel listener binds ("mesh" listener).
    public var address: Endpoint
    /// Absolute path of the control API's Unix socket.
    public var control: String

    public init(name: String, address: Endpoint, control: String = NodeSettings.defaultControl) {
        self.name = name
        self.address = address
        self.control = control
    }
}
