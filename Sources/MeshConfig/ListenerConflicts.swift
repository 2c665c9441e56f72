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

    /// The node's listeners in a fixed order: mesh, metrics, then the rest of `NodeListener.all`
    /// (forwards in file order, balancers by name, `same_address` listeners).
    private static func listeners(on node: String, in configuration: MeshConfiguration) -> [Listener] {
        var result = NodeListener.all(on: node, in: configuration).map { Listener(endpoint: $0.endpoint, name: $0.name, path: $0.path) }
        if let metrics = configuration.metrics {
            // Second, as it always was, so a clash with a forward still names `metrics` as the earlier key.
            result.insert(Listener(endpoint: metrics, name: "metrics", path: "metrics"), at: min(1, result.count))
        }
        return result
    }
}
