import MeshBalancer
import MeshConfig
import MeshControlModel
import MeshTunnel

extension ConfigChange {
    /// What a reload from `running` to `new` changes on `node`, for a person and for `--json`:
    /// the tunnel and forward plan (`MeshNode.plan`), the balancer listener plan
    /// (`BalancerHost.listenerPlan`), and the services and balancers whose settings differ. In
    /// kind order (tunnels, listeners, services, balancers), each kind by name.
    public static func planned(
        node: String,
        running: MeshConfiguration,
        new: MeshConfiguration,
        tunnels plan: ReloadPlan,
        balancerListeners: BalancerListenerPlan
    ) -> [ConfigChange] {
        var changes = self.tunnels(node: node, running: running, new: new, plan: plan)
        changes += self.listeners(node: node, running: running, plan: plan, balancerListeners: balancerListeners)
        changes += self.services(node: node, running: running, new: new)
        changes += self.balancers(node: node, running: running, new: new)
        return changes
    }

    private static func tunnels(node: String, running: MeshConfiguration, new: MeshConfiguration, plan: ReloadPlan) -> [ConfigChange] {
        // A peer both removed and added is one whose address changed: the same peer, dialed anew.
        let moved = Set(plan.addedPeers).intersection(plan.removedPeers)
        var changes: [ConfigChange] = []
        for peer in plan.addedPeers where !moved.contains(peer) {
            let address = new.nodes[peer].map { "\($0.address)" } ?? "?"
            let how = node < peer ? "this node dials it at \(address)" : "it dials this node (from \(address))"
            changes.append(ConfigChange(.tunnel, .added, peer, detail: how))
        }
        for peer in plan.removedPeers where !moved.contains(peer) {
            changes.append(ConfigChange(.tunnel, .closed, peer, detail: "no longer in nodes; its streams are reset"))
        }
        for peer in moved {
            let from = running.nodes[peer].map { "\($0.address)" } ?? "?"
            let to = new.nodes[peer].map { "\($0.address)" } ?? "?"
            changes.append(ConfigChange(.tunnel, .redialed, peer, detail: "address \(from) -> \(to); its streams are reset"))
        }
        for peer in plan.revokedPeers {
            changes.append(
                ConfigChange(
                    .tunnel,
                    .closed,
                    peer,
                    detail: "the new CRL revokes the certificate it presented; its handshakes fail until it has a new one"
                )
            )
        }
        for peer in plan.reauthenticatedPeers {
            changes.append(
                ConfigChange(.tunnel, .redialed, peer, detail: "certificate or CA bundle changed: a fresh tunnel is authenticated with it")
            )
        }
        return changes.sorted { $0.name < $1.name }
    }

    private static func listeners(
        node: String,
        running: MeshConfiguration,
        plan: ReloadPlan,
        balancerListeners: BalancerListenerPlan
    ) -> [ConfigChange] {
        var changes: [ConfigChange] = []
        let open = running.forwards(on: node)
        for key in plan.removedForwards {
            let forward = open.first { $0.listen == key.listen && $0.service == key.service && $0.node == key.node }
            let name = forward?.listenerName ?? ForwardSettings.listenerName(for: key.listen)
            changes.append(ConfigChange(.listener, .closed, name, detail: "\(key.listen) -> \(key.service)@\(key.node)"))
        }
        for forward in plan.openedForwards + plan.deferredForwards {
            changes.append(
                ConfigChange(.listener, .opened, forward.listenerName, detail: "\(forward.listen) -> \(forward.service)@\(forward.node)")
            )
        }
        for listener in balancerListeners.closed {
            changes.append(ConfigChange(.listener, .closed, listener.name, detail: "\(listener.endpoint), balancer \(listener.balancer)"))
        }
        for listener in balancerListeners.opened {
            changes.append(ConfigChange(.listener, .opened, listener.name, detail: "\(listener.endpoint), balancer \(listener.balancer)"))
        }
        return changes.sorted { ($0.name, $0.action.rawValue) < ($1.name, $1.action.rawValue) }
    }

    /// Services this node serves, or that a balancer here routes to, in either config.
    private static func services(node: String, running: MeshConfiguration, new: MeshConfiguration) -> [ConfigChange] {
        var names = Set<String>()
        for config in [running, new] {
            names.formUnion(config.services(on: node).map(\.name))
            names.formUnion(config.balancers(on: node).map(\.service))
        }
        return names.sorted().compactMap { name in
            switch (running.services[name], new.services[name]) {
            case (nil, let added?):
                let target = added.on[node].map { "served here at \($0)" } ?? "a balancer here routes to it"
                return ConfigChange(.service, .added, name, detail: target)
            case (_?, nil):
                return ConfigChange(.service, .removed, name, detail: "open streams to it go on; new ones are refused")
            case (let old?, let changed?) where old != changed:
                var fields: [String] = []
                if old.on != changed.on { fields.append("on") }
                if old.allow != changed.allow { fields.append("allow") }
                if old.postgres != changed.postgres { fields.append("postgres") }
                if old.sameAddress != changed.sameAddress { fields.append("same_address") }
                return ConfigChange(.service, .changed, name, detail: fields.joined(separator: ", "))
            default:
                return nil
            }
        }
    }

    /// Balancers with listeners on this node in either config.
    private static func balancers(node: String, running: MeshConfiguration, new: MeshConfiguration) -> [ConfigChange] {
        let names = Set(running.balancers(on: node).map(\.name) + new.balancers(on: node).map(\.name))
        return names.sorted().compactMap { name in
            let old = running.balancers[name].flatMap { $0.on[node] == nil ? nil : $0 }
            let changed = new.balancers[name].flatMap { $0.on[node] == nil ? nil : $0 }
            switch (old, changed) {
            case (nil, let added?):
                return ConfigChange(.balancer, .added, name, detail: "service \(added.service)")
            case (_?, nil):
                return ConfigChange(.balancer, .removed, name, detail: "its sessions go on until they end")
            case (let old?, let changed?) where old != changed:
                var fields: [String] = []
                if old.service != changed.service { fields.append("service") }
                if old.on != changed.on { fields.append("on") }
                if old.maxLag != changed.maxLag {
                    fields.append("max_lag \(DurationText.format(old.maxLag)) -> \(DurationText.format(changed.maxLag))")
                }
                if old.roFallback != changed.roFallback { fields.append("ro_fallback") }
                if old.tls != changed.tls { fields.append("tls") }
                return ConfigChange(.balancer, .changed, name, detail: fields.joined(separator: ", "))
            default:
                return nil
            }
        }
    }
}
