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
    /// The certificate of the peer's verified chain (its leaf and the CA certificates up to our
    /// trust anchor) that expires first.
    public var peerChainValidity: CertificateValidity
    /// SHA-256 fingerprints of the CA certificates in the peer's verified chain: a reload whose CA
    /// bundle drops one of them no longer trusts this tunnel.
    public var peerAuthorities: Set<String>

    public init(
        peer: MeshIdentity,
        peerCertificateNotAfter: Date,
        peerCertificateSerial: String = "",
        alpn: String?,
        peerChainValidity: CertificateValidity? = nil,
        peerAuthorities: Set<String> = []
    ) {
        self.peer = peer
        self.peerCertificateNotAfter = peerCertificateNotAfter
        self.peerCertificateSerial = peerCertificateSerial
        self.alpn = alpn
        self.peerChainValidity = peerChainValidity ?? CertificateValidity(notBefore: .distantPast, notAfter: peerCertificateNotAfter)
        self.peerAuthorities = peerAuthorities
    }
}
