/// A local listener on one node whose connections are carried to `service@node`.
public struct ForwardSettings: Sendable, Equatable {
    /// The node that listens.
    public var on: String
    public var listen: Endpoint
    /// The target service and the node serving it (from "to": "service@node").
    public var service: String
    public var node: String
    /// The socket-activation name: "forward-<port>", or "forward-<basename>" for a Unix socket;
    /// "<service>@<node>" for a listener a `same_address` service puts on the node.
    public var listenerName: String

    public init(on: String, listen: Endpoint, service: String, node: String, listenerName: String? = nil) {
        self.on = on
        self.listen = listen
        self.service = service
        self.node = node
        self.listenerName = listenerName ?? Self.listenerName(for: listen)
    }

    public static func listenerName(for listen: Endpoint) -> String {
        switch listen {
        case .tcp(_, let port): "forward-\(port)"
        case .unix(let path): "forward-\(FilePaths.basename(path))"
        }
    }
}
