/// One socket a node listens on that systemd can hold for it (socket activation), under the name
/// meshd adopts it by (`FileDescriptorName=`): `mesh`, `forward-<port>`, `<service>@<node>`,
/// `<balancer>-rw`, `<balancer>-ro`. meshd's socket adoption, `meshctl units` and the listener
/// conflict check all read this one list, so a unit's name is always one meshd looks for.
public struct NodeListener: Sendable, Equatable {
    /// What the listener is for, so a unit can say it in its Description=.
    public enum Role: Sendable, Equatable {
        /// The tunnel listener peers dial (`nodes.NAME.address`).
        case mesh
        /// A declared forward to `service@node`.
        case forward(service: String, node: String)
        /// A `same_address` service's member reached at its own address.
        case sameAddress(service: String, node: String)
        case balancerReadWrite(balancer: String)
        case balancerReadOnly(balancer: String)
    }

    /// The socket-activation name of the tunnel listener.
    public static let meshName = "mesh"

    public var name: String
    public var endpoint: Endpoint
    public var role: Role
    /// The JSON path in mesh.json that declares the address, as errors print it.
    public var path: String

    /// The listeners of `node` in a fixed order: mesh, forwards in file order, balancers by name,
    /// then the listeners of `same_address` services (by service, then serving node). The metrics
    /// listener is not among them: meshd binds it itself.
    public static func all(on node: String, in configuration: MeshConfiguration) -> [NodeListener] {
        var result: [NodeListener] = []
        if let settings = configuration.nodes[node] {
            let path = JSONPath.root.key("nodes").key(node).key("address").text
            result.append(NodeListener(name: Self.meshName, endpoint: settings.address, role: .mesh, path: path))
        }
        for (index, forward) in configuration.forwards.enumerated() where forward.on == node {
            let path = JSONPath.root.key("forwards").index(index).key("listen").text
            let role = Role.forward(service: forward.service, node: forward.node)
            result.append(NodeListener(name: forward.listenerName, endpoint: forward.listen, role: role, path: path))
        }
        for balancer in configuration.balancers(on: node) {
            guard let listeners = balancer.on[node] else { continue }
            let base = JSONPath.root.key("balancers").key(balancer.name).key("on").key(node)
            if let rw = listeners.rw {
                let role = Role.balancerReadWrite(balancer: balancer.name)
                result.append(NodeListener(name: balancer.rwListenerName, endpoint: rw, role: role, path: base.key("rw").text))
            }
            if let ro = listeners.ro {
                let role = Role.balancerReadOnly(balancer: balancer.name)
                result.append(NodeListener(name: balancer.roListenerName, endpoint: ro, role: role, path: base.key("ro").text))
            }
        }
        for forward in configuration.sameAddressForwards(on: node) {
            let path = JSONPath.root.key("services").key(forward.service).key("on").key(forward.node).text
            let role = Role.sameAddress(service: forward.service, node: forward.node)
            result.append(NodeListener(name: forward.listenerName, endpoint: forward.listen, role: role, path: path))
        }
        return result
    }
}
