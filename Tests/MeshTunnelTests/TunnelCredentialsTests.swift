import Foundation
import MeshConfig
import MeshTLS
import XCTest

@testable import MeshTunnel

/// When a tunnel is renewed and when a reload makes it stale, from what authenticated it.
final class TunnelCredentialsTests: XCTestCase {
    private let start = Date(timeIntervalSince1970: 1_800_000_000)

    private func local(
        certificate: String = "c1",
        authorities: Set<String> = ["ca1"],
        lifetime: TimeInterval = 90 * 86_400
    )
        -> LocalCredentials
    {
        LocalCredentials(
            certificateFingerprint: certificate,
            authorities: authorities,
            chainValidity: CertificateValidity(notBefore: self.start, notAfter: self.start.addingTimeInterval(lifetime))
        )
    }

    private func credentials(
        local: LocalCredentials,
        peerLifetime: TimeInterval,
        authenticatedAfter: TimeInterval = 60,
        peerAuthorities: Set<String> = ["ca1"]
    ) -> TunnelCredentials {
        let handshake = TLSHandshakeCompleted(
            peer: MeshIdentity(mesh: "m", node: "db1"),
            peerCertificateNotAfter: self.start.addingTimeInterval(peerLifetime),
            peerCertificateSerial: "01",
            alpn: "h2",
            peerChainValidity: CertificateValidity(notBefore: self.start, notAfter: self.start.addingTimeInterval(peerLifetime)),
            peerAuthorities: peerAuthorities
        )
        return TunnelCredentials(authenticatedAt: self.start.addingTimeInterval(authenticatedAfter), local: local, handshake: handshake)
    }

    func testTheEarliestNotAfterOfBothChainsCounts() {
        let ours = self.credentials(local: self.local(lifetime: 3_600), peerLifetime: 90 * 86_400)
        XCTAssertEqual(ours.notAfter, self.start.addingTimeInterval(3_600), "our own chain ends first")
        let theirs = self.credentials(local: self.local(lifetime: 90 * 86_400), peerLifetime: 600)
        XCTAssertEqual(theirs.notAfter, self.start.addingTimeInterval(600), "the peer's chain ends first")
    }

    /// reauthenticate_before caps long lifetimes; a quarter of the lifetime rules short ones.
    func testRenewalTimeIsTheMarginOrAQuarterOfTheLifetime() {
        let long = self.credentials(local: self.local(), peerLifetime: 90 * 86_400)
        XCTAssertEqual(long.renewalTime(before: .seconds(86_400)), self.start.addingTimeInterval(89 * 86_400))
        let hour = self.credentials(local: self.local(), peerLifetime: 3_600)
        XCTAssertEqual(hour.renewalTime(before: .seconds(86_400)), self.start.addingTimeInterval(2_700))
        XCTAssertTrue(hour.renewsByExpiry(before: .seconds(86_400)))
    }

    /// A tunnel authenticated after its own renewal time got the newest certificates there were:
    /// renewing it by expiry again would bring the same ones.
    func testATunnelAuthenticatedPastItsRenewalTimeDoesNotRenewByExpiry() {
        let late = self.credentials(local: self.local(), peerLifetime: 3_600, authenticatedAfter: 3_000)
        XCTAssertFalse(late.renewsByExpiry(before: .seconds(86_400)))
    }

    func testAReloadOfTheCertificateOrTheBundleMakesItStaleAndNothingElse() {
        let tunnel = self.credentials(local: self.local(), peerLifetime: 3_600)
        XCTAssertFalse(tunnel.isStale(comparedWith: self.local(lifetime: 7_200)), "the same certificate and bundle")
        XCTAssertTrue(tunnel.isStale(comparedWith: self.local(certificate: "c2")))
        XCTAssertTrue(tunnel.isStale(comparedWith: self.local(authorities: ["ca1", "ca2"])))
    }

    func testATunnelIsUntrustedOnceABundleLacksACAItsPeerWasVerifiedThrough() {
        let tunnel = self.credentials(local: self.local(), peerLifetime: 3_600, peerAuthorities: ["ca1"])
        XCTAssertTrue(tunnel.isTrusted(by: ["ca1", "ca2"]))
        XCTAssertFalse(tunnel.isTrusted(by: ["ca2"]))
    }
}
