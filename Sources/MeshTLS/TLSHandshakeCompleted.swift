import Foundation
import MeshConfig

/// Fired with `fireUserInboundEventTriggered` when the handshake completes and the peer is verified.
public struct TLSHandshakeCompleted: Sendable {
    /// The peer's identity from its certificate's URI SAN, already checked against the `PeerPolicy`.
    public var peer: MeshIdentity
    public var peerCertificateNotAfter: Date
    /// The negotiated ALPN protocol; always "h2" today, since the handshake fails without it.
    public var alpn: String?

    public init(peer: MeshIdentity, peerCertificateNotAfter: Date, alpn: String?) {
        self.peer = peer
        self.peerCertificateNotAfter = peerCertificateNotAfter
        self.alpn = alpn
    }
}
