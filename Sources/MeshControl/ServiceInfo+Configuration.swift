import MeshConfig
import MeshControlModel

extension ServiceInfo {
    /// What `node` serves (by service name), then its forwards in file order.
    public static func entries(config: MeshConfiguration, node: String) -> [ServiceInfo] {
        let served = config.services(on: node).map { service in
            let allow: [String] =
                switch service.allow {
                case .anyNode: ["*"]
                case .nodes(let names): names.sorted()
                }
            return ServiceInfo(name: service.name, role: .served, target: service.on[node].map { "\($0)" }, allow: allow)
        }
        let forwards = config.forwards(on: node).map { forward in
            ServiceInfo(name: forward.service, role: .forward, listen: "\(forward.listen)", to: "\(forward.service)@\(forward.node)")
        }
        return served + forwards
    }
}
