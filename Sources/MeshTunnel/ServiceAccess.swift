import MeshConfig

/// Decides whether a peer may open a service on this node, and where the service is. Checked on
/// the serving side against the peer's verified certificate identity.
struct ServiceAccess: Sendable {
    let node: String
    let services: [String: ServiceSettings]

    func target(service: String, peer: String) -> Result<LocalTarget, ConnectRequest.Refusal> {
        guard let settings = self.services[service], let target = settings.on[self.node] else {
            return .failure(.notFound)
        }
        guard settings.allow.permits(peer) else { return .failure(.forbidden) }
        return .success(LocalTarget(target, preconnect: settings.preconnect))
    }
}
