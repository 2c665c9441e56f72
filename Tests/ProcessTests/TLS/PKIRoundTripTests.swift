import Foundation
import MeshConfig
import MeshTLS
import XCTest

/// The CA library against the real `openssl` tool: issue, verify with the CRL, revoke, verify again.
final class PKIRoundTripTests: XCTestCase {
    private var root: URL!
    private var pki: URL { root.appendingPathComponent("pki") }

    override func setUpWithError() throws {
        root = try PKITests.makeTemporaryDirectory()
    }

    override func tearDownWithError() throws {
        try? FileManager.default.removeItem(at: root)
    }

    func testIssuedCertificatesVerifyAndRevocationCutsOnlyTheRevokedNode() throws {
        let directory = PKIDirectory(pki.path)
        let authority = try CertificateAuthority.create(mesh: "demo", in: directory)
        XCTAssertEqual(authority.meshName, "demo")
        for node in ["db1", "db2", "app1"] {
            let info = try authority.issue(node: node)
            XCTAssertEqual(info.commonName, node)
            XCTAssertEqual(info.uriSANs, ["spiffe://demo/node/\(node)"])
            // The identity the TLS side reads back with MeshConfig's parser.
            XCTAssertEqual(info.uriSANs.first.flatMap(MeshIdentity.init(uri:)), MeshIdentity(mesh: "demo", node: node))
            XCTAssertEqual(info.dnsSANs, [node])
            XCTAssertFalse(info.isCA)
            let verified = try PKITests.verify("\(node).pem", in: pki)
            XCTAssertEqual(verified.status, 0, "openssl verify \(node): \(verified.output)")
            XCTAssertTrue(verified.stdout.contains("\(node).pem: OK"), verified.output)
        }

        let text = try PKITests.run(PKITests.openssl, ["x509", "-in", "db1.pem", "-noout", "-text"], in: pki)
        XCTAssertEqual(text.status, 0, text.output)
        XCTAssertTrue(text.stdout.contains("URI:spiffe://demo/node/db1, DNS:db1"), text.stdout)
        XCTAssertTrue(text.stdout.contains("TLS Web Server Authentication, TLS Web Client Authentication"), text.stdout)
        XCTAssertTrue(text.stdout.contains("CA:FALSE"), text.stdout)
        let caText = try PKITests.run(PKITests.openssl, ["x509", "-in", "ca.pem", "-noout", "-text"], in: pki)
        XCTAssertTrue(caText.stdout.contains("URI:spiffe://demo"), caText.stdout)
        XCTAssertTrue(caText.stdout.contains("Certificate Sign, CRL Sign"), caText.stdout)

        let db2Serial = try CertificateInfo(pemFile: directory.certificate(node: "db2")).serial
        XCTAssertEqual(try authority.revoke(node: "db2"), .revoked(serial: db2Serial, crlNumber: 2, entries: 1))

        let rejected = try PKITests.verify("db2.pem", in: pki)
        XCTAssertNotEqual(rejected.status, 0)
        XCTAssertTrue(rejected.output.contains("certificate revoked"), rejected.output)
        for node in ["db1", "app1"] {
            let accepted = try PKITests.verify("\(node).pem", in: pki)
            XCTAssertEqual(accepted.status, 0, "\(node) after revoking db2: \(accepted.output)")
        }

        // Revoking again changes nothing; revoking another keeps the first entry.
        XCTAssertEqual(try authority.revoke(node: "db2"), .alreadyRevoked(serial: db2Serial, crlNumber: 2))
        let app1Serial = try CertificateInfo(pemFile: directory.certificate(node: "app1")).serial
        XCTAssertEqual(try authority.revoke(node: "app1"), .revoked(serial: app1Serial, crlNumber: 3, entries: 2))
        let crl = try authority.revocationList().info
        XCTAssertEqual(Set(crl.revoked.map(\.serial)), [db2Serial, app1Serial])
        XCTAssertEqual(crl.number, 3)
        XCTAssertTrue(try PKITests.verify("db2.pem", in: pki).output.contains("certificate revoked"))
        XCTAssertEqual(try PKITests.verify("db1.pem", in: pki).status, 0)

        // openssl reads the same serials from the CRL.
        let crlText = try PKITests.run(PKITests.openssl, ["crl", "-in", "crl.pem", "-noout", "-text"], in: pki)
        XCTAssertTrue(crlText.stdout.contains(db2Serial) && crlText.stdout.contains(app1Serial), crlText.stdout)
    }

    func testKeysAreOwnerOnlyAndTheDirectoryIsCreatedPrivate() throws {
        let directory = PKIDirectory(pki.path)
        let authority = try CertificateAuthority.create(mesh: "demo", in: directory)
        try authority.issue(node: "db1")
        XCTAssertEqual(try PKITests.mode(of: pki), 0o700)
        XCTAssertEqual(try PKITests.mode(of: pki.appendingPathComponent("ca.key")), 0o600)
        XCTAssertEqual(try PKITests.mode(of: pki.appendingPathComponent("db1.key")), 0o600)
        XCTAssertEqual(try PKITests.mode(of: pki.appendingPathComponent("db1.pem")), 0o644)
        // The key on disk belongs to the certificate on disk.
        let check = try PKITests.run(
            PKITests.openssl,
            ["x509", "-in", "db1.pem", "-noout", "-pubkey"],
            in: pki
        )
        let fromKey = try PKITests.run(PKITests.openssl, ["pkey", "-in", "db1.key", "-pubout"], in: pki)
        XCTAssertEqual(check.stdout, fromKey.stdout)
        XCTAssertTrue(fromKey.stdout.contains("BEGIN PUBLIC KEY"))
    }

    func testFreshCRLIsEmptySignedAndValidForAYear() throws {
        let now = Date()
        let directory = PKIDirectory(pki.path)
        let authority = try CertificateAuthority.create(mesh: "demo", in: directory, now: now)
        let crl = try authority.revocationList().info
        XCTAssertEqual(crl.number, 1)
        XCTAssertEqual(crl.revoked, [])
        XCTAssertEqual(crl.issuer, "CN=tunnelmesh demo CA")
        let nextUpdate = try XCTUnwrap(crl.nextUpdate)
        XCTAssertEqual(nextUpdate.timeIntervalSince(now), 365 * 86_400, accuracy: 2)
        let checked = try PKITests.run(PKITests.openssl, ["crl", "-in", "crl.pem", "-CAfile", "ca.pem", "-noout"], in: pki)
        XCTAssertEqual(checked.status, 0, checked.output)
        XCTAssertTrue(checked.output.contains("verify OK"), checked.output)
    }

    func testLoadingReadsTheMeshBackAndRejectsAMismatchedKey() throws {
        let first = PKIDirectory(root.appendingPathComponent("one").path)
        let second = PKIDirectory(root.appendingPathComponent("two").path)
        _ = try CertificateAuthority.create(mesh: "prod.example", in: first)
        _ = try CertificateAuthority.create(mesh: "other", in: second)
        XCTAssertEqual(try CertificateAuthority(loadingFrom: first).meshName, "prod.example")

        try FileManager.default.removeItem(atPath: first.caKey)
        try FileManager.default.copyItem(atPath: second.caKey, toPath: first.caKey)
        XCTAssertThrowsError(try CertificateAuthority(loadingFrom: first)) { error in
            XCTAssertTrue("\(error)".contains("does not belong to"), "\(error)")
        }
    }

    func testRevokingACertificateFromAnotherCAIsRefused() throws {
        let ours = PKIDirectory(root.appendingPathComponent("ours").path)
        let theirs = PKIDirectory(root.appendingPathComponent("theirs").path)
        let authority = try CertificateAuthority.create(mesh: "demo", in: ours)
        try CertificateAuthority.create(mesh: "demo", in: theirs).issue(node: "db9")
        try FileManager.default.copyItem(atPath: theirs.certificate(node: "db9"), toPath: ours.certificate(node: "db9"))
        XCTAssertThrowsError(try authority.revoke(node: "db9")) { error in
            XCTAssertTrue("\(error)".contains("was not issued by the CA"), "\(error)")
        }
        XCTAssertEqual(try authority.revocationList().info.revoked, [])
    }

    func testShowDescribesCertificatesAndCRLsAndRefusesKeys() throws {
        let directory = PKIDirectory(pki.path)
        let authority = try CertificateAuthority.create(mesh: "demo", in: directory)
        try authority.issue(node: "db1")
        guard case .certificate(let info) = try PKIDocument(pemFile: directory.certificate(node: "db1")) else {
            return XCTFail("db1.pem was not read as a certificate")
        }
        let fingerprint = try PKITests.run(
            PKITests.openssl,
            ["x509", "-in", "db1.pem", "-noout", "-fingerprint", "-sha256"],
            in: pki
        )
        XCTAssertEqual(fingerprint.stdout.trimmingCharacters(in: .whitespacesAndNewlines), "sha256 Fingerprint=\(info.sha256Fingerprint)")
        let serial = try PKITests.run(PKITests.openssl, ["x509", "-in", "db1.pem", "-noout", "-serial"], in: pki)
        XCTAssertEqual(serial.stdout.trimmingCharacters(in: .whitespacesAndNewlines), "serial=\(info.serial)")

        guard case .revocationList(let crl) = try PKIDocument(pemFile: directory.revocationList) else {
            return XCTFail("crl.pem was not read as a CRL")
        }
        XCTAssertEqual(crl.number, 1)
        XCTAssertThrowsError(try PKIDocument(pemFile: directory.caKey)) { error in
            XCTAssertTrue("\(error)".contains("is a private key"), "\(error)")
        }
    }
}
