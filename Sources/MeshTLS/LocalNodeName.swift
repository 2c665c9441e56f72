import MeshConfig

/// Which node of mesh.json this machine is: the name the operator gave (`--node`, `MESHD_NODE`),
/// else the node its certificate names. meshd and `meshctl units` both ask here, so the agent
/// and its generated socket units can never disagree about the node.
public enum LocalNodeName {
    /// `requested` when it is a declared node; without one, the node named by the URI SAN of the
    /// certificate `tls.cert` points to (only possible when `tls.cert` has no `{node}`).
    public static func resolve(config: MeshConfiguration, requested: String?) throws(NodeNameError) -> String {
        let declared = config.sortedNodeNames.joined(separator: ", ")
        if let requested {
            guard config.nodes[requested] != nil else {
                throw NodeNameError(
                    kind: .undeclared,
                    message: "\(config.file): nodes: no node \"\(requested)\" (declared: \(declared)) — pass --node with one of them"
                )
            }
            return requested
        }
        guard !config.tls.cert.contains("{node}") else {
            throw NodeNameError(
                kind: .unnamed,
                message:
                    "\(config.file): tls.cert contains {node}, so meshd needs --node NAME or MESHD_NODE=NAME to find its certificate (declared: \(declared))"
            )
        }
        let path = config.tlsFiles(for: "").cert
        let info: CertificateInfo
        do {
            info = try CertificateInfo(pemFile: path)
        } catch {
            throw NodeNameError(kind: .certificate, message: "\(error)")
        }
        guard let identity = info.uriSANs.lazy.compactMap(MeshIdentity.init(uri:)).first, config.nodes[identity.node] != nil else {
            throw NodeNameError(
                kind: .certificate,
                message:
                    "\(path): no URI SAN spiffe://\(config.mesh)/node/<name> naming a declared node (declared: \(declared)) — pass --node NAME"
            )
        }
        return identity.node
    }
}
