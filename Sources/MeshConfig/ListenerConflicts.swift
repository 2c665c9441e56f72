/// Finds two listeners on one node that could not both bind, or that share a socket-activation name.
enum ListenerConflicts {
    /// One socket a node will bind, and the JSON path that declared it.
    private struct Listener {
        var endpoint: Endpoint
        var name: String
        var path: String
    }

    static func check(_ configuration: MeshConfiguration) throws(ConfigError) {
        for node in configuration.sortedNodeNames {
            var seen: [Listener] = []
            for listener in listeners(on: node, in: configuration) {
                for earlier in seen {
                    if let message = conflict(listener, earlier, node: node) {
                        throw ConfigError(file: configuration.file, path: listener.path, message: message)
                    }
                }
                seen.append(listener)
            }
            try checkSameAddressAgainstServices(on: node, in: configuration)
        }
    }

    /// A `same_address` listener on a node must not take an address a service of that node's own
    /// binds: the service (etcd, PostgreSQL, ...) would fail to start, or meshd would.
    private static func checkSameAddressAgainstServices(on node: String, in configuration: MeshConfiguration) throws(ConfigError) {
        let local = configuration.services(on: node)
        for forward in configuration.sameAddressForwards(on: node) {
            for service in local {
                guard let target = service.on[node], target == forward.listen || target.collides(with: forward.listen) else { continue }
                throw ConfigError(
                    file: configuration.file,
                    path: sameAddressPath(forward),
                    message: "\(forward.listen) is where meshd on node \(node) reaches \(forward.service)@\(forward.node) (same_address), "
                        + "but node \(node)'s own service \(quoted(service.name)) uses \(target) too; give one of them another address"
                )
            }
        }
    }

    private static func sameAddressPath(_ forward: ForwardSettings) -> String {
        JSONPath.root.key("services").key(forward.service).key("on").key(forward.node).text
    }

    private static func conflict(_ listener: Listener, _ earlier: Listener, node: String) -> String? {
        if listener.endpoint == earlier.endpoint {
            return "\(listener.endpoint) on node \(node) is already used by \(earlier.path)"
        }
        if listener.endpoint.collides(with: earlier.endpoint) {
            return "\(listener.endpoint) on node \(node) overlaps \(earlier.endpoint) used by \(earlier.path)"
        }
        if listener.name == earlier.name {
            return "listener name \(quoted(listener.name)) on node \(node) is already used by \(earlier.path); "
                + "socket activation needs unique names, so pick another port or socket name"
        }
        return nil
    }

    /// The node's listeners in a fixed order: mesh, metrics, forwards in file order, balancers by
    /// name, then the listeners of `same_address` services.
    private static func listeners(on node: String, in configuration: MeshConfiguration) -> [Listener] {
        var result: [Listener] = []
        if let settings = configuration.nodes[node] {
            result.append(
                Listener(endpoint: settings.address, name: "mesh", path: JSONPath.root.key("nodes").key(node).key("address").text)
            )
        }
        if let metrics = configuration.metrics {
            result.append(Listener(endpoint: metrics, name: "metrics", path: "metrics"))
        }
        for (index, forward) in configuration.forwards.enumerated() where forward.on == node {
            let path = JSONPath.root.key("forwards").index(index).key("listen").text
            result.append(Listener(endpoint: forward.listen, name: forward.listenerName, path: path))
        }
        for balancer in configuration.balancers(on: node) {
            guard let listeners = balancer.on[node] else { continue }
            let base = JSONPath.root.key("balancers").key(balancer.name).key("on").key(node)
            if let rw = listeners.rw {
                result.append(Listener(endpoint: rw, name: balancer.rwListenerName, path: base.key("rw").text))
            }
            if let ro = listeners.ro {
                result.append(Listener(endpoint: ro, name: balancer.roListenerName, path: base.key("ro").text))
            }
        }
        for forward in configuration.sameAddressForwards(on: node) {
            result.append(Listener(endpoint: forward.listen, name: forward.listenerName, path: sameAddressPath(forward)))
        }
        return result
    }
}
