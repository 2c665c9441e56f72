import Foundation
import MeshTLS
import MeshTestSupport
import XCTest

/// The built `meshctl` binary (found beside the test bundle) driven like an operator would, checked
/// against the real `openssl` tool.
final class PKICommandLineTests: XCTestCase {
    private var root: URL!
    private var meshctl: String!

    override func setUpWithError() throws {
        let testBinary = try FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")
        let candidate = URL(fileURLWithPath: testBinary).deletingLastPathComponent().appendingPathComponent("meshctl").path
        // A missing binary is a failure, not a skip: 'swift build --build-tests' always builds meshctl.
        meshctl = try XCTUnwrap(
            FileManager.default.isExecutableFile(atPath: candidate) ? candidate : nil,
            "no meshctl at \(candidate): build it first with 'swift build --build-tests'"
        )
        root = try PKITests.makeTemporaryDirectory()
    }

    override func tearDownWithError() throws {
        if let root { try? FileManager.default.removeItem(at: root) }
    }

    private func meshctl(_ arguments: String...) throws -> CommandResult {
        try PKITests.run(meshctl, arguments, in: root)
    }

    private var pki: URL { root.appendingPathComponent("pki") }

    func testInitIssueRevokeShowRoundTrip() throws {
        let created = try meshctl("pki", "init", "--mesh", "demo", "--dir", "pki")
        XCTAssertEqual(created.status, 0, created.output)
        XCTAssertTrue(created.stdout.contains("created the CA for mesh 'demo'"), created.output)
        XCTAssertEqual(try PKITests.mode(of: pki), 0o700)
        XCTAssertEqual(try PKITests.mode(of: pki.appendingPathComponent("ca.key")), 0o600)

        for node in ["db1", "db2", "app1"] {
            let issued = try meshctl("pki", "issue", node, "--dir", "pki")
            XCTAssertEqual(issued.status, 0, issued.output)
            XCTAssertEqual(try PKITests.mode(of: pki.appendingPathComponent("\(node).key")), 0o600)
            let verified = try PKITests.verify("\(node).pem", in: pki)
            XCTAssertEqual(verified.status, 0, "\(node): \(verified.output)")
        }

        let shown = try meshctl("pki", "show", "pki/db1.pem")
        XCTAssertEqual(shown.status, 0, shown.output)
        XCTAssertTrue(shown.stdout.contains("URI:spiffe://demo/node/db1, DNS:db1"), shown.stdout)
        XCTAssertTrue(shown.stdout.contains("CN=tunnelmesh demo CA"), shown.stdout)
        let fingerprint = try PKITests.run(
            PKITests.openssl,
            ["x509", "-in", "db1.pem", "-noout", "-fingerprint", "-sha256"],
            in: pki
        )
        let expected = try XCTUnwrap(fingerprint.stdout.split(separator: "=").last).trimmingCharacters(in: .whitespacesAndNewlines)
        XCTAssertEqual(expected.count, 95, fingerprint.stdout)  // 32 bytes as colon hex
        XCTAssertTrue(shown.stdout.contains("SHA-256     \(expected)"), shown.stdout)

        let revoked = try meshctl("pki", "revoke", "db2", "--dir", "pki")
        XCTAssertEqual(revoked.status, 0, revoked.output)
        XCTAssertTrue(revoked.stdout.contains("revoked db2"), revoked.stdout)
        XCTAssertTrue(revoked.stdout.contains("CRL #2"), revoked.stdout)
        XCTAssertTrue(try PKITests.verify("db2.pem", in: pki).output.contains("certificate revoked"))
        XCTAssertEqual(try PKITests.verify("db1.pem", in: pki).status, 0)

        let again = try meshctl("pki", "revoke", "db2", "--dir", "pki")
        XCTAssertEqual(again.status, 0, again.output)
        XCTAssertTrue(again.stdout.contains("already revoked"), again.stdout)

        let db2Serial = try CertificateInfo(pemFile: pki.appendingPathComponent("db2.pem").path).serial
        let crlShown = try meshctl("pki", "show", "pki/crl.pem")
        XCTAssertEqual(crlShown.status, 0, crlShown.output)
        XCTAssertTrue(crlShown.stdout.contains("CRL #2"), crlShown.stdout)
        XCTAssertTrue(crlShown.stdout.contains(db2Serial), crlShown.stdout)
    }

    func testShowJSONCarriesTheCertificateFields() throws {
        XCTAssertEqual(try meshctl("pki", "init", "--mesh", "demo", "--dir", "pki").status, 0)
        XCTAssertEqual(try meshctl("pki", "issue", "db1", "--dir", "pki", "--days", "30").status, 0)
        let shown = try meshctl("pki", "show", "pki/db1.pem", "--json")
        XCTAssertEqual(shown.status, 0, shown.output)
        let object = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(shown.stdout.utf8)) as? [String: Any])
        XCTAssertEqual(object["kind"] as? String, "certificate")
        XCTAssertEqual(object["uriSANs"] as? [String], ["spiffe://demo/node/db1"])
        XCTAssertEqual(object["dnsSANs"] as? [String], ["db1"])
        XCTAssertEqual(object["commonName"] as? String, "db1")
        XCTAssertEqual(object["daysLeft"] as? Int, 29)

        let crl = try meshctl("pki", "show", "pki/crl.pem", "--json")
        let crlObject = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(crl.stdout.utf8)) as? [String: Any])
        XCTAssertEqual(crlObject["kind"] as? String, "crl")
        XCTAssertEqual(crlObject["number"] as? Int, 1)
    }

    func testNotBeforeMakesExpiredAndNotYetValidCertificates() throws {
        XCTAssertEqual(try meshctl("pki", "init", "--mesh", "demo", "--dir", "pki").status, 0)
        let expired = try meshctl("pki", "issue", "old", "--dir", "pki", "--not-before", "2020-01-01", "--days", "30")
        XCTAssertEqual(expired.status, 0, expired.output)
        XCTAssertTrue(try PKITests.verify("old.pem", in: pki).output.contains("certificate has expired"))
        XCTAssertTrue(try meshctl("pki", "show", "pki/old.pem").stdout.contains("(expired)"))

        // Sixty days ahead, at 12:00:00 UTC (inside the new CA's ten years).
        var parts = tm()
        var later = time_t(Date().addingTimeInterval(60 * 86_400).timeIntervalSince1970)
        gmtime_r(&later, &parts)
        let day = String(format: "%04d-%02d-%02d", Int(parts.tm_year) + 1900, Int(parts.tm_mon) + 1, Int(parts.tm_mday))
        let future = try meshctl("pki", "issue", "early", "--dir", "pki", "--not-before", "\(day)T12:00:00Z", "--days", "30")
        XCTAssertEqual(future.status, 0, future.output)
        XCTAssertTrue(try PKITests.verify("early.pem", in: pki).output.contains("certificate is not yet valid"))
        let shown = try meshctl("pki", "show", "pki/early.pem")
        XCTAssertTrue(shown.stdout.contains("not before  \(day) 12:00:00 UTC"), shown.stdout)
        XCTAssertTrue(shown.stdout.contains("(not yet valid)"), shown.stdout)

        let impossible = try meshctl("pki", "issue", "x", "--dir", "pki", "--not-before", "2025-02-30")
        XCTAssertEqual(impossible.status, 2, impossible.output)
        XCTAssertTrue(impossible.stderr.contains("--not-before"), impossible.stderr)

        let help = try meshctl("pki", "issue", "--help")
        XCTAssertEqual(help.status, 0)
        XCTAssertTrue(help.stdout.contains("--not-before") && help.stdout.contains("expired or not-yet-valid"), help.stdout)
    }

    /// Certificates minutes long, for certificate rotation: --valid-for counts from now.
    func testValidForIssuesShortLivedCertificates() throws {
        XCTAssertEqual(try meshctl("pki", "init", "--mesh", "demo", "--dir", "pki").status, 0)
        let before = Date()
        let issued = try meshctl("pki", "issue", "db1", "--dir", "pki", "--valid-for", "5m")
        XCTAssertEqual(issued.status, 0, issued.output)
        let end = try Command.check("openssl", ["x509", "-noout", "-enddate", "-in", pki.appendingPathComponent("db1.pem").path])
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = TimeZone(identifier: "UTC")
        formatter.dateFormat = "MMM d HH:mm:ss yyyy zzz"
        let text = end.dropFirst("notAfter=".count).split(whereSeparator: \.isWhitespace).joined(separator: " ")
        let notAfter = try XCTUnwrap(formatter.date(from: text), end)
        XCTAssertEqual(notAfter.timeIntervalSince(before), 300, accuracy: 5, end)

        for bad in ["5", "five minutes", "0s"] {
            let refused = try meshctl("pki", "issue", "db2", "--dir", "pki", "--valid-for", bad)
            XCTAssertNotEqual(refused.status, 0, "--valid-for \(bad): \(refused.output)")
            XCTAssertTrue(refused.stderr.contains("--valid-for"), "--valid-for \(bad): \(refused.stderr)")
        }
    }

    func testInitTwiceWithoutForceExits2AndKeepsTheCA() throws {
        XCTAssertEqual(try meshctl("pki", "init", "--mesh", "demo", "--dir", "pki").status, 0)
        let before = try Data(contentsOf: pki.appendingPathComponent("ca.pem"))
        let second = try meshctl("pki", "init", "--mesh", "demo", "--dir", "pki")
        XCTAssertEqual(second.status, 2, second.output)
        XCTAssertTrue(second.stderr.hasPrefix("meshctl: pki/ca.pem already exists"), second.stderr)
        XCTAssertTrue(second.stderr.contains("--force"), second.stderr)
        XCTAssertEqual(try Data(contentsOf: pki.appendingPathComponent("ca.pem")), before)

        let forced = try meshctl("pki", "init", "--mesh", "demo", "--dir", "pki", "--force")
        XCTAssertEqual(forced.status, 0, forced.output)
        XCTAssertNotEqual(try Data(contentsOf: pki.appendingPathComponent("ca.pem")), before)
    }

    func testInputErrorsExit2WithAMessage() throws {
        let noCA = try meshctl("pki", "issue", "db1", "--dir", "pki")
        XCTAssertEqual(noCA.status, 2, noCA.output)
        XCTAssertEqual(
            noCA.stderr.trimmingCharacters(in: .newlines),
            "meshctl: pki/ca.pem: no such file — run 'meshctl pki init --mesh NAME --dir pki' first"
        )

        XCTAssertEqual(try meshctl("pki", "init", "--mesh", "demo", "--dir", "pki").status, 0)
        for bad in ["Db1", "db.1", "ca"] {
            let result = try meshctl("pki", "issue", bad, "--dir", "pki")
            XCTAssertEqual(result.status, 2, "\(bad): \(result.output)")
            XCTAssertTrue(result.stderr.contains("invalid node name '\(bad)'"), result.stderr)
        }
        let badMesh = try meshctl("pki", "init", "--mesh", "Demo!", "--dir", "other")
        XCTAssertEqual(badMesh.status, 2, badMesh.output)
        XCTAssertTrue(badMesh.stderr.contains("invalid mesh name 'Demo!'"), badMesh.stderr)

        let missingArgument = try meshctl("pki", "issue", "--dir", "pki")
        XCTAssertEqual(missingArgument.status, 2, "ArgumentParser's usage error must map to 2: \(missingArgument.output)")
        XCTAssertTrue(missingArgument.stderr.contains("Usage: meshctl pki issue"), missingArgument.stderr)

        let unknownFlag = try meshctl("pki", "show", "pki/ca.pem", "--bogus")
        XCTAssertEqual(unknownFlag.status, 2, unknownFlag.output)

        let revokeMissing = try meshctl("pki", "revoke", "db7", "--dir", "pki")
        XCTAssertEqual(revokeMissing.status, 2, revokeMissing.output)
        XCTAssertTrue(revokeMissing.stderr.contains("pki/db7.pem: no such file"), revokeMissing.stderr)

        let showKey = try meshctl("pki", "show", "pki/ca.key")
        XCTAssertEqual(showKey.status, 2, showKey.output)
        XCTAssertTrue(showKey.stderr.contains("is a private key"), showKey.stderr)
    }
}
