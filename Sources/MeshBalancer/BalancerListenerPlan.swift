import MeshConfig

/// Which balancer listeners a config opens and closes on a node, given those open now: what
/// `BalancerHost.reload` carries out and a dry run reports, from one function.
public struct BalancerListenerPlan: Sendable, Equatable {
    /// One balancer listener, identified by all of it: any change is a close plus an open.
    public struct Listener: Hashable, Sendable {
        public let balancer: String
        public let kind: ListenerKind
        public let endpoint: Endpoint

        /// The socket-activation name (README, "Units"): `<balancer>-rw` or `<balancer>-ro`.
        public var name: String { "\(self.balancer)-\(self.kind.rawValue)" }
    }

    /// In order of name, then address.
    public internal(set) var opened: [Listener] = []
    public internal(set) var closed: [Listener] = []

    static func make(config: MeshConfiguration, node: String, open: Set<Listener>) -> BalancerListenerPlan {
        let wanted = self.listeners(config, node: node)
        return BalancerListenerPlan(opened: self.sorted(wanted.subtracting(open)), closed: self.sorted(open.subtracting(wanted)))
    }

    /// Every balancer listener `config` puts on `node`.
    static func listeners(_ config: MeshConfiguration, node: String) -> Set<Listener> {
        var listeners = Set<Listener>()
        for balancer in config.balancers(on: node) {
            guard let on = balancer.on[node] else { continue }
            if let rw = on.rw { listeners.insert(Listener(balancer: balancer.name, kind: .rw, endpoint: rw)) }
            if let ro = on.ro { listeners.insert(Listener(balancer: balancer.name, kind: .ro, endpoint: ro)) }
        }
        return listeners
    }

    static func sorted(_ listeners: some Collection<Listener>) -> [Listener] {
        listeners.sorted { ($0.name, "\($0.endpoint)") < ($1.name, "\($1.endpoint)") }
    }
}
