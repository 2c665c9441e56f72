import Foundation
import MeshConfig
import XCTest

@testable import MeshTLS

/// TLSContext loading: what a good node gets, and the exact complaint for each broken file.
final class TLSContextTests: TLSPKITestCase {
    private func setupError(
        _ files: TLSFiles,
        role: TLSContext.Role = .server,
        file: StaticString = #filePath,
        line: UInt = #line
    )
        -> TLSSetupError?
    {
        do {
            _ = try TLSContext(role: role, files: files)
            XCTFail("expected a TLSSetupError", file: file, line: line)
            return nil
        } catch {
            return error
        }
    }

    func testLoadsBothRolesWithIdentityAndExpiry() throws {
        for role in [TLSContext.Role.server, .client] {
            let context = try pki.context(role, "db1", crl: true)
            XCTAssertEqual(context.localIdentity, MeshIdentity(mesh: "demo", node: "db1"))
            // Issued for 30 days by the test CA.
            let days = context.certificateNotAfter.timeIntervalSinceNow / 86_400
            XCTAssert((29...31).contains(days), "notAfter is \(days) days away")
            XCTAssertEqual(context.role, role)
        }
    }

    func testCertificateWithoutSpiffeURIHasNoLocalIdentity() throws {
        XCTAssertNil(try pki.context(.client, "noid").localIdentity)
        XCTAssertNil(try pki.context(.client, "twoids").localIdentity)
    }

    func testMissingFileIsNamed() throws {
        var files = pki.files("db1")
        files.ca = pki.path("nope/ca.pem")
        let error = try XCTUnwrap(setupError(files))
        XCTAssertEqual(error.file, files.ca)
        XCTAssertEqual(error.message, "CA certificate (tls.ca) file does not exist; create it or fix the path in mesh.json")
    }

    func testKeyThatDoesNotMatchNamesBothFiles() throws {
        var files = pki.files("db1")
        files.key = pki.path("db2.key")
        let error = try XCTUnwrap(setupError(files))
        XCTAssertEqual(error.file, "\(files.key) and \(files.cert)")
        XCTAssert(error.message.hasPrefix("the private key does not match the certificate"), error.message)
    }

    func testGarbageCertificateAndKey() throws {
        let junk = pki.path("junk.txt")
        try "hello, not PEM\n".write(toFile: junk, atomically: true, encoding: .utf8)
        var files = pki.files("db1")
        files.cert = junk
        var error = try XCTUnwrap(setupError(files))
        XCTAssertEqual(error.file, junk)
        XCTAssert(error.message.hasPrefix("not a PEM certificate"), error.message)

        files = pki.files("db1")
        files.key = junk
        error = try XCTUnwrap(setupError(files))
        XCTAssertEqual(error.file, junk)
        XCTAssert(error.message.hasPrefix("not a PEM private key"), error.message)

        files = pki.files("db1")
        files.ca = junk
        error = try XCTUnwrap(setupError(files))
        XCTAssertEqual(error.file, junk)
        XCTAssert(error.message.hasPrefix("no PEM certificate found"), error.message)
    }

    func testEncryptedKeyIsRefusedWithoutPrompting() throws {
        let encrypted = try pki.encryptedKey("db1", passphrase: "secret", to: "db1-encrypted.key")
        var files = pki.files("db1")
        files.key = encrypted
        let error = try XCTUnwrap(setupError(files))
        XCTAssertEqual(error.file, encrypted)
        XCTAssert(error.message.contains("encrypted with a passphrase"), error.message)
    }

    /// Mid CA rotation the bundle holds the old and the new CA of the mesh, both named after it,
    /// and the CRL file both CAs' CRLs: each CRL is matched to the CA that signed it, not to the
    /// first CA of its issuer's name (which refused the new CA's CRL as "not signed by the CA").
    func testTwoCAsOfOneNameEachTakeTheirOwnCRL() throws {
        let old = PKIDirectory(pki.path("rotation-old"))
        let new = PKIDirectory(pki.path("rotation-new"))
        _ = try CertificateAuthority.create(mesh: "demo", in: old)
        let authority = try CertificateAuthority.create(mesh: "demo", in: new)
        _ = try authority.issue(node: "db1")
        func joined(_ paths: [String], as name: String) throws -> String {
            try Data(paths.map { try Data(contentsOf: URL(fileURLWithPath: $0)) }.joined()).write(to: URL(fileURLWithPath: pki.path(name)))
            return pki.path(name)
        }
        let bundle = try joined([old.caCertificate, new.caCertificate], as: "rotation-ca.pem")
        let crls = try joined([old.revocationList, new.revocationList], as: "rotation-crl.pem")
        var files = TLSFiles(ca: bundle, cert: new.certificate(node: "db1"), key: new.key(node: "db1"), crl: crls)
        XCTAssertNoThrow(try TLSContext(role: .server, files: files), "the two-CA bundle with both CRLs loads")

        // A CRL whose CA is not in the bundle is still refused, though a CA of its name is there.
        files.ca = old.caCertificate
        let error = try XCTUnwrap(setupError(files))
        XCTAssert(error.message.hasPrefix("this CRL is not signed by the CA in \(old.caCertificate)"), error.message)
    }

    func testCRLProblemsAreErrorsNeverSkipped() throws {
        // Missing.
        var files = pki.files("db1", crl: true)
        files.crl = pki.path("missing-crl.pem")
        var error = try XCTUnwrap(setupError(files))
        XCTAssertEqual(error.file, files.crl)
        XCTAssert(error.message.contains("does not exist"), error.message)

        // Not a CRL.
        files.crl = pki.path("db1.pem")
        error = try XCTUnwrap(setupError(files))
        XCTAssertEqual(error.file, files.crl)
        XCTAssert(error.message.hasPrefix("no PEM CRL"), error.message)

        // Signed by a CA we do not trust.
        files = pki.files("db1", crl: true)
        files.ca = pki.path("otherca-root.pem")
        error = try XCTUnwrap(setupError(files))
        XCTAssertEqual(error.file, pki.path("crl.pem"))
        XCTAssert(error.message.hasPrefix("this CRL is not signed by the CA in \(files.ca)"), error.message)

        // Past its nextUpdate.
        let stale = try pki.staleRevocationList("stale-crl.pem")
        files = pki.files("db1", crl: true)
        files.crl = stale
        error = try XCTUnwrap(setupError(files))
        XCTAssertEqual(error.file, stale)
        XCTAssert(error.message.hasPrefix("this CRL expired on 2020-02-01T00:00:00Z"), error.message)
    }
}
