import Foundation
import MeshTLS
import XCTest

/// Validity windows and name rules: what openssl says about backdated and future certificates, and
/// which names and day counts the CA refuses.
final class PKIValidityTests: XCTestCase {
    private var root: URL!
    private var pki: URL { root.appendingPathComponent("pki") }
    private var authority: CertificateAuthority!

    override func setUpWithError() throws {
        root = try PKITests.makeTemporaryDirectory()
        authority = try CertificateAuthority.create(mesh: "demo", in: PKIDirectory(pki.path))
    }

    override func tearDownWithError() throws {
        authority = nil
        try? FileManager.default.removeItem(at: root)
    }

    func testPastWindowIsExpiredForOpenSSL() throws {
        let start = Date().addingTimeInterval(-40 * 86_400)
        let info = try authority.issue(node: "old", days: 30, notBefore: start)
        XCTAssertEqual(info.notBefore.timeIntervalSince1970, start.timeIntervalSince1970.rounded(.down), accuracy: 0.5)
        XCTAssertEqual(info.notAfter.timeIntervalSince(info.notBefore), 30 * 86_400)
        XCTAssertLessThan(info.daysLeft(), 0)
        let result = try PKITests.verify("old.pem", in: pki)
        XCTAssertNotEqual(result.status, 0)
        XCTAssertTrue(result.output.contains("certificate has expired"), result.output)
    }

    func testFutureWindowIsNotYetValidForOpenSSL() throws {
        try authority.issue(node: "early", days: 30, notBefore: Date().addingTimeInterval(5 * 86_400))
        let result = try PKITests.verify("early.pem", in: pki)
        XCTAssertNotEqual(result.status, 0)
        XCTAssertTrue(result.output.contains("certificate is not yet valid"), result.output)
    }

    func testDefaultWindowStartsAnHourBackAndLastsTheRequestedDays() throws {
        let now = Date()
        let info = try authority.issue(node: "db1", days: 90, now: now)
        XCTAssertEqual(info.notBefore.timeIntervalSince(now), -3600, accuracy: 2)
        XCTAssertEqual(info.notAfter.timeIntervalSince(info.notBefore), 90 * 86_400)
        XCTAssertEqual(info.daysLeft(at: now), 89)
    }

    func testCertificateMayNotOutliveItsCA() throws {
        let shortLived = try CertificateAuthority.create(
            mesh: "demo",
            in: PKIDirectory(root.appendingPathComponent("short").path),
            days: 10
        )
        XCTAssertThrowsError(try shortLived.issue(node: "db1", days: 30)) { error in
            XCTAssertTrue("\(error)".contains("use fewer --days"), "\(error)")
        }
    }

    func testDayCountsOutsideTheRangeAreRefused() {
        for days in [0, -1, 36_501] {
            XCTAssertThrowsError(try authority.issue(node: "db1", days: days), "days \(days)") { error in
                XCTAssertTrue("\(error)".contains("out of range"), "\(error)")
            }
        }
        XCTAssertFalse(FileManager.default.fileExists(atPath: pki.appendingPathComponent("db1.pem").path))
    }

    func testNodeNamesFollowTheMeshJSONRule() {
        for good in ["db1", "a", "0node", "app_1-x", String(repeating: "n", count: 63)] {
            XCTAssertNoThrow(try PKIName.validateNode(good), good)
        }
        for bad in ["", "Db1", "-db", "_db", "db.1", "db/1", "db 1", "dé", String(repeating: "n", count: 64), "ca", "crl"] {
            XCTAssertThrowsError(try PKIName.validateNode(bad), "'\(bad)' should be refused") { error in
                XCTAssertTrue("\(error)".contains("invalid node name '\(bad)'"), "\(error)")
            }
        }
    }

    func testMeshNamesAllowDotsButFitTheCACommonName() {
        XCTAssertNoThrow(try PKIName.validateMesh("prod.example.org"))
        for bad in ["", "Prod", ".x", "a/b", String(repeating: "m", count: 51)] {
            XCTAssertThrowsError(try PKIName.validateMesh(bad), "'\(bad)' should be refused")
        }
    }

    func testExistingFilesAreKeptUnlessForced() throws {
        let directory = PKIDirectory(pki.path)
        let first = try authority.issue(node: "db1")
        XCTAssertThrowsError(try authority.issue(node: "db1")) { error in
            XCTAssertTrue("\(error)".contains("already exists"), "\(error)")
        }
        XCTAssertEqual(try CertificateInfo(pemFile: directory.certificate(node: "db1")).serial, first.serial)
        let second = try authority.issue(node: "db1", force: true)
        XCTAssertNotEqual(second.serial, first.serial)
        XCTAssertThrowsError(try CertificateAuthority.create(mesh: "demo", in: directory)) { error in
            XCTAssertTrue("\(error)".contains("pass --force"), "\(error)")
        }
    }

    func testSerialsAreRandomPositive128BitNumbers() throws {
        var serials: Set<String> = []
        for index in 0..<5 {
            let serial = try authority.issue(node: "n\(index)").serial
            XCTAssertEqual(serial.count, 32, serial)  // 16 bytes, no leading zero byte
            XCTAssertLessThan(UInt8(serial.prefix(2), radix: 16) ?? 0xff, 0x80, "positive: \(serial)")
            serials.insert(serial)
        }
        XCTAssertEqual(serials.count, 5)
    }
}
