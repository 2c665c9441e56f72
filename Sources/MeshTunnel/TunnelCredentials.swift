import Foundation
import MeshConfig
import MeshTLS

/// What one tunnel was authenticated with, and when: the handshake's time, the certificate of
/// either chain that expires first, and what this node trusted and presented. No tunnel outlives
/// them (README, "Certificate rotation").
struct TunnelCredentials: Sendable {
    var authenticatedAt: Date
    /// The earliest-expiring certificate of both chains (leaves and CA certificates).
    var validity: CertificateValidity
    /// This node's certificate and CA bundle as the handshake used them.
    var local: LocalCredentials
    /// The CA certificates the peer's chain was verified through.
    var peerAuthorities: Set<String>
    /// The peer's certificate serial (uppercase hex, as a CRL lists it).
    var peerSerial: String

    init(authenticatedAt: Date, local: LocalCredentials, handshake: TLSHandshakeCompleted) {
        self.authenticatedAt = authenticatedAt
        self.validity = handshake.peerChainValidity.earlier(local.chainValidity)
        self.local = local
        self.peerAuthorities = handshake.peerAuthorities
        self.peerSerial = handshake.peerCertificateSerial
    }

    var notAfter: Date { self.validity.notAfter }

    /// When the tunnel is re-authenticated ahead of `notAfter`: `before` earlier, or a quarter of
    /// that certificate's lifetime when that is less, so a short-lived certificate is not due for
    /// renewal for most of its life.
    func renewalTime(before: Duration) -> Date {
        let margin = min(before.timeInterval, self.validity.lifetime / 4)
        return self.notAfter.addingTimeInterval(-margin)
    }

    /// Whether reaching `renewalTime` can yield anything newer: a tunnel authenticated after that
    /// time already had the newest certificates either side could present (a peer that was not
    /// given a new certificate); renewing it again would only churn. A reload or the peer's request
    /// still renews it.
    func renewsByExpiry(before: Duration) -> Bool {
        self.renewalTime(before: before) > self.authenticatedAt
    }

    /// Whether a node now holding `current` must re-authenticate this tunnel: its own certificate
    /// or its CA bundle changed since the handshake.
    func isStale(comparedWith current: LocalCredentials) -> Bool {
        current.certificateFingerprint != self.local.certificateFingerprint || current.authorities != self.local.authorities
    }

    /// Whether the CA bundle `authorities` still holds every CA certificate the peer's chain was
    /// verified through; when not, a CA that authenticated the tunnel was taken out of the bundle.
    func isTrusted(by authorities: Set<String>) -> Bool {
        self.peerAuthorities.isSubset(of: authorities)
    }
}
