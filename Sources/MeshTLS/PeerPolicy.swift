import MeshConfig

/// Who may be on the other end.
public enum PeerPolicy: Sendable {
    /// Inbound: any declared node of this mesh.
    case declaredNode(mesh: String, nodes: Set<String>)
    /// Outbound: the node we dialed.
    case exactly(MeshIdentity)

    /// Checks an identity taken from a chain-verified certificate; nil when the peer is acceptable.
    func rejection(of identity: MeshIdentity) -> TLSHandshakeError? {
        switch self {
        case .declaredNode(let mesh, let nodes):
            if identity.mesh != mesh {
                return TLSHandshakeError(
                    .wrongMesh,
                    "peer certificate names \(identity.uri), which belongs to mesh \"\(identity.mesh)\", not \"\(mesh)\""
                )
            }
            if !nodes.contains(identity.node) {
                return TLSHandshakeError(
                    .undeclaredNode,
                    "peer certificate names \(identity.uri), but node \"\(identity.node)\" is not declared in mesh.json "
                        + "(declared: \(nodes.sorted().joined(separator: ", ")))"
                )
            }
            return nil
        case .exactly(let expected):
            if identity.mesh != expected.mesh {
                return TLSHandshakeError(
                    .wrongMesh,
                    "dialed \(expected.uri) but the peer certificate names \(identity.uri) (another mesh)"
                )
            }
            if identity.node != expected.node {
                return TLSHandshakeError(
                    .wrongNode,
                    "dialed \(expected.uri) but the peer certificate names \(identity.uri)"
                )
            }
            return nil
        }
    }
}
