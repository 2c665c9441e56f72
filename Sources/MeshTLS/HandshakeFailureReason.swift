import COpenSSL

/// Why a TLS handshake failed, as a stable label for logs, metrics and `meshctl`.
public enum HandshakeFailureReason: String, Sendable, CaseIterable {
    case noCertificate = "no_certificate"
    case untrusted
    case expired
    case notYetValid = "not_yet_valid"
    case revoked
    case wrongMesh = "wrong_mesh"
    case undeclaredNode = "undeclared_node"
    case wrongNode = "wrong_node"
    case noIdentity = "no_identity"
    case protocolVersion = "protocol_version"
    case notTLS = "not_tls"
    case timeout
    case eof
    case peerRejected = "peer_rejected"
    /// Closed mid-handshake by the listener to give its slot to a newer connection (the pending
    /// handshakes were at `tunnel.max_pending_handshakes`).
    case evicted
    case other
}
