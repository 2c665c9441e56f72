import Logging
import MeshConfig
import MeshTunnel

/// Cuts the `rw` sessions of a node the moment it stops being the primary: when it reports
/// standby, or when the router now picks another node for `rw` (a promoted standby on a higher
/// timeline). Runs after every report the registry stores.
struct DemotionGuard: Sendable {
    let node: MeshNode
    let registry: BackendRegistry
    let sessions: WriteSessions
    let logger: Logger

    func check(after report: BackendReport) {
        let config = self.node.config
        for balancer in config.balancers(on: self.node.name) where balancer.service == report.service {
            let holders = self.sessions.nodes(balancer: balancer.name)
            guard !holders.isEmpty, let service = config.services[balancer.service] else { continue }
            let backends = self.registry.backends(service: service.name, nodes: service.on.keys)
            let choice = Router(settings: balancer).choose(.rw, backends: backends, connections: [:])
            for holder in holders {
                guard let reason = Self.demotion(of: holder, backends: backends, choice: choice) else { continue }
                let cut = self.sessions.cut(balancer: balancer.name, node: holder)
                if cut > 0 {
                    self.logger.warning("balancer \(balancer.name): cut \(cut) rw session(s) on \(holder): \(reason)")
                }
            }
        }
    }

    /// Why `node` is no longer the primary, or nil while it may still be.
    static func demotion(of node: String, backends: [BackendState], choice: Result<String, ErrorResponse>) -> String? {
        if let status = backends.first(where: { $0.node == node })?.status, status.role == .standby {
            return "it now reports standby"
        }
        if case .success(let primary) = choice, primary != node {
            return "\(primary) is now the primary"
        }
        return nil
    }
}
