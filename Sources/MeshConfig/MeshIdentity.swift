/// SPIFFE-shaped identity `spiffe://<mesh>/node/<name>`.
public struct MeshIdentity: Sendable, Hashable, CustomStringConvertible {
    public var mesh: String
    public var node: String

    public init(mesh: String, node: String) {
        self.mesh = mesh
        self.node = node
    }

    /// Parses exactly `spiffe://<mesh>/node/<name>` with a valid trust domain and node name; nil for
    /// anything else (other schemes, other paths, extra segments, query or fragment, empty name).
    public init?(uri: String) {
        let scheme = "spiffe://"
        guard uri.hasPrefix(scheme) else { return nil }
        let segments = uri.dropFirst(scheme.count).split(separator: "/", omittingEmptySubsequences: false)
        guard segments.count == 3, segments[1] == "node",
            MeshNames.isValidTrustDomain(String(segments[0])), MeshNames.isValidName(String(segments[2]))
        else { return nil }
        self.init(mesh: String(segments[0]), node: String(segments[2]))
    }

    /// The URI SAN a node's certificate carries.
    public var uri: String { "spiffe://\(mesh)/node/\(node)" }

    public var description: String { uri }
}
