/// The naming rules for mesh and node names, which end up in certificates, URIs and file names.
///
/// Node names follow mesh.json's rule (1–63 characters of `[a-z0-9_-]`, starting with a letter or
/// digit). MeshConfig has no validator to share yet, so the rule lives here for now.
public enum PKIName {
    /// Names that would collide with the CA's own files in a PKI directory (`ca.pem`, `crl.pem`).
    public static let reservedNodeNames: Set<String> = ["ca", "crl"]

    /// Throws unless `name` can be a node name in certificates and in the PKI directory.
    public static func validateNode(_ name: String) throws {
        if let problem = problem(with: name, allowingDots: false, maxLength: 63) {
            throw PKIError("invalid node name '\(name)': \(problem) — use the node's name from mesh.json")
        }
        if reservedNodeNames.contains(name) {
            throw PKIError("invalid node name '\(name)': it would overwrite the CA's \(name).pem — pick another name")
        }
    }

    /// Throws unless `name` can be a mesh name; it becomes the SPIFFE trust domain, so dots are allowed.
    /// At most 50 characters, so the CA's common name "tunnelmesh <mesh> CA" fits X.509's 64.
    public static func validateMesh(_ name: String) throws {
        if let problem = problem(with: name, allowingDots: true, maxLength: 50) {
            throw PKIError("invalid mesh name '\(name)': \(problem) — use the \"mesh\" value from mesh.json")
        }
    }

    private static func problem(with name: String, allowingDots: Bool, maxLength: Int) -> String? {
        let bytes = Array(name.utf8)
        guard (1...maxLength).contains(bytes.count) else {
            return "must be 1 to \(maxLength) characters long, not \(bytes.count)"
        }
        let isAlphanumeric: (UInt8) -> Bool = { (0x61...0x7a).contains($0) || (0x30...0x39).contains($0) }
        guard isAlphanumeric(bytes[0]) else {
            return "must start with a lowercase letter or a digit"
        }
        let extra: Set<UInt8> = allowingDots ? [0x2d, 0x5f, 0x2e] : [0x2d, 0x5f]
        guard bytes.allSatisfy({ isAlphanumeric($0) || extra.contains($0) }) else {
            return allowingDots
                ? "may only contain lowercase letters, digits, '.', '-' and '_'"
                : "may only contain lowercase letters, digits, '-' and '_'"
        }
        return nil
    }
}
