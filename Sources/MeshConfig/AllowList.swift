/// Which peers may open a service: every declared node ("*") or the listed ones.
public enum AllowList: Sendable, Equatable {
    case anyNode
    case nodes(Set<String>)

    /// Whether `node` (a verified peer identity's node name) may open the service.
    public func permits(_ node: String) -> Bool {
        switch self {
        case .anyNode: true
        case .nodes(let names): names.contains(node)
        }
    }
}
