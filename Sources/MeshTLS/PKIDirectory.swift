/// Where a mesh's CA, CRL and node files live inside one PKI directory (the layout mesh.json's `tls` points at).
public struct PKIDirectory: Sendable, Equatable {
    /// The directory as the operator gave it; file paths keep that spelling so messages match what they typed.
    public let path: String

    public init(_ path: String) {
        var trimmed = path
        while trimmed.count > 1 && trimmed.hasSuffix("/") { trimmed.removeLast() }
        self.path = trimmed.isEmpty ? "." : trimmed
    }

    public var caCertificate: String { file("ca.pem") }
    public var caKey: String { file("ca.key") }
    public var revocationList: String { file("crl.pem") }
    public func certificate(node: String) -> String { file("\(node).pem") }
    public func key(node: String) -> String { file("\(node).key") }

    private func file(_ name: String) -> String {
        path == "/" ? "/\(name)" : "\(path)/\(name)"
    }
}
