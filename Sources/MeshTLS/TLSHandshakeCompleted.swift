import Foundation
import MeshConfig

/// Fired with `fireUserInboundEventTriggered` when the handshake completes and the peer is verified.
public struct TLSHandshakeCompleted: Sendable {
    /// The peer's identity from its certificate's URI SAN, already checked against the `PeerPolicy`.
    public var peer: MeshIdentity
    public var peerCertificateNotAfter: Date
    /// Uppercase hex, as in a CRL listing: lets a reload find tunnels whose peer was just revoked.
    public var peerCertificateSerial: String
    /// The negotiated ALPN protocol; always "h2" today, since the handshake fails without it.
    public var alpn: String?

    public init(peer: MeshIdentity, peerCertificateNotAfter: Date, peerCertificateSerial: String = "", alpn: String?) {
        self.peer = peer
        self.peerCertificateNotAfter = peerCertificateNotAfter
        self.peerCertificateSerial = peerCertificateSerial
        self.alpn = alpn
    }
}
