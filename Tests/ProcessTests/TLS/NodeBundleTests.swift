import Foundation
import MeshTestSupport
import XCTest

#if canImport(Glibc)
import Glibc
#endif

/// `meshctl pki issue NODE --bundle`: the archive a node is given, unpacked by the real GNU tar the
/// way README says (`tar -C / -xpf`, here into a temp root), then checked with openssl and with
/// `meshctl check` against a mesh.json that uses the default `tls` paths.
final class NodeBundleTests: XCTestCase {
    private var root: URL!
    private var meshctl: String!

    override func setUpWithError() throws {
        self.meshctl = try BuildProducts.path("meshctl")
        self.root = try PKITests.makeTemporaryDirectory()
    }

    override func tearDownWithError() throws {
        if let root { try? FileManager.default.removeItem(at: root) }
    }

    private func run(_ executable: String, _ arguments: [String]) throws -> CommandResult {
        let result = try PKITests.run(executable, arguments, in: self.root)
        XCTAssertFalse(result.timedOut, "\(executable) \(arguments) timed out")
        return result
    }

    func testBundleHoldsExactlyWhatTheNodeNeedsWithModesAndOwners() throws {
        XCTAssertEqual(try self.run(self.meshctl, ["pki", "init", "--mesh", "demo", "--dir", "pki"]).status, 0)
        let issued = try self.run(self.meshctl, ["pki", "issue", "db1", "--dir", "pki", "--bundle"])
        XCTAssertEqual(issued.status, 0, issued.output)
        XCTAssertTrue(issued.stdout.contains("pki/db1-bundle.tar"), issued.stdout)
        let archive = self.root.appendingPathComponent("pki/db1-bundle.tar")
        XCTAssertEqual(try PKITests.mode(of: archive), 0o600, "the archive holds a private key")
        let leftovers = try FileManager.default.contentsOfDirectory(atPath: self.root.appendingPathComponent("pki").path)
        XCTAssertEqual(
            leftovers.sorted(),
            ["ca.key", "ca.pem", "crl.pem", "db1-bundle.tar", "db1.key", "db1.pem"],
            "no staging files left"
        )

        // Exactly these members, no parent directories (extraction must not touch /etc or /etc/meshd).
        let names = try self.run("/usr/bin/tar", ["-tf", archive.path])
        XCTAssertEqual(names.status, 0, names.output)
        XCTAssertEqual(
            names.stdout.split(separator: "\n").map(String.init),
            ["etc/meshd/pki/", "etc/meshd/pki/ca.pem", "etc/meshd/pki/crl.pem", "etc/meshd/pki/db1.key", "etc/meshd/pki/db1.pem"]
        )
        // Owners by name for the node, id 0 where the name is unknown.
        let listing = try self.run("/usr/bin/tar", ["-tvf", archive.path]).stdout.split(separator: "\n")
        let numeric = try self.run("/usr/bin/tar", ["--numeric-owner", "-tvf", archive.path]).stdout.split(separator: "\n")
        XCTAssertEqual(listing.count, 5)
        for (line, ids) in zip(listing, numeric) {
            XCTAssertTrue(line.contains(" root/meshd "), "owned root:meshd: \(line)")
            XCTAssertTrue(ids.contains(" 0/0 "), "stored ids root:root: \(ids)")
        }
        let caKey = try String(contentsOf: self.root.appendingPathComponent("pki/ca.key"), encoding: .utf8)
        let body = caKey.split(separator: "\n").filter { !$0.hasPrefix("-----") }.joined()
        // Past the ASN.1 header every P-256 key shares: the CA's private scalar.
        let secret = String(body.dropFirst(48).prefix(40))
        XCTAssertEqual(secret.count, 40, caKey)
        let bytes = try String(decoding: Data(contentsOf: archive), as: UTF8.self)
        XCTAssertFalse(bytes.contains(secret), "the CA key must not be in the bundle")

        // Unpacked as on a node (as root, -p keeps the modes).
        let node = self.root.appendingPathComponent("node")
        try FileManager.default.createDirectory(at: node, withIntermediateDirectories: false)
        let unpacked = try self.run("/usr/bin/tar", ["-C", node.path, "-xpf", archive.path])
        XCTAssertEqual(unpacked.status, 0, unpacked.output)
        let pki = node.appendingPathComponent("etc/meshd/pki")
        XCTAssertEqual(try PKITests.mode(of: pki), 0o750)
        XCTAssertEqual(try PKITests.mode(of: pki.appendingPathComponent("db1.key")), 0o640)
        for file in ["ca.pem", "crl.pem", "db1.pem"] {
            XCTAssertEqual(try PKITests.mode(of: pki.appendingPathComponent(file)), 0o644, file)
        }
        if getuid() == 0 {
            let meshdGroup = getgrnam("meshd").map { Int($0.pointee.gr_gid) } ?? 0
            for file in ["", "db1.key", "db1.pem"] {
                let attributes = try FileManager.default.attributesOfItem(atPath: pki.appendingPathComponent(file).path)
                XCTAssertEqual((attributes[.ownerAccountID] as? NSNumber)?.intValue, 0, "\(file): owner root")
                XCTAssertEqual(
                    (attributes[.groupOwnerAccountID] as? NSNumber)?.intValue,
                    meshdGroup,
                    "\(file): group meshd, or root without one"
                )
            }
        }
        XCTAssertEqual(
            try Data(contentsOf: pki.appendingPathComponent("ca.pem")),
            try Data(contentsOf: self.root.appendingPathComponent("pki/ca.pem"))
        )
        let all = try FileManager.default.subpathsOfDirectory(atPath: node.path).sorted()
        XCTAssertEqual(
            all,
            [
                "etc", "etc/meshd", "etc/meshd/pki", "etc/meshd/pki/ca.pem", "etc/meshd/pki/crl.pem", "etc/meshd/pki/db1.key",
                "etc/meshd/pki/db1.pem",
            ]
        )

        // The key is the certificate's, and the certificate verifies against the bundled CA and CRL.
        let certificateKey = try self.run(
            PKITests.openssl,
            ["x509", "-in", pki.appendingPathComponent("db1.pem").path, "-noout", "-pubkey"]
        )
        let privateKey = try self.run(PKITests.openssl, ["pkey", "-in", pki.appendingPathComponent("db1.key").path, "-pubout"])
        XCTAssertEqual(certificateKey.status, 0, certificateKey.output)
        XCTAssertEqual(privateKey.status, 0, privateKey.output)
        XCTAssertEqual(certificateKey.stdout, privateKey.stdout, "db1.key must be db1.pem's key")
        let verified = try PKITests.verify("db1.pem", in: pki)
        XCTAssertEqual(verified.status, 0, verified.output)

        // mesh.json's usual tls paths find every file.
        try Data(
            """
            { "mesh": "demo",
              "tls": { "ca": "pki/ca.pem", "cert": "pki/{node}.pem", "key": "pki/{node}.key", "crl": "pki/crl.pem" },
              "nodes": { "db1": { "address": "127.0.0.1:7443" } } }
            """.utf8
        ).write(to: node.appendingPathComponent("etc/meshd/mesh.json"))
        let check = try self.run(self.meshctl, ["check", node.appendingPathComponent("etc/meshd/mesh.json").path, "--node", "db1"])
        XCTAssertEqual(check.status, 0, check.output)
        XCTAssertTrue(check.stdout.contains("0 errors"), check.stdout)
    }

    func testBundleOfAnExistingNodeNeedsForceAndAMissingCRLIsNamed() throws {
        XCTAssertEqual(try self.run(self.meshctl, ["pki", "init", "--mesh", "demo", "--dir", "pki"]).status, 0)
        XCTAssertEqual(try self.run(self.meshctl, ["pki", "issue", "db1", "--dir", "pki"]).status, 0)
        let again = try self.run(self.meshctl, ["pki", "issue", "db1", "--dir", "pki", "--bundle"])
        XCTAssertEqual(again.status, 2, again.output)
        XCTAssertTrue(again.stderr.contains("--force"), again.stderr)
        XCTAssertFalse(FileManager.default.fileExists(atPath: self.root.appendingPathComponent("pki/db1-bundle.tar").path))

        try FileManager.default.removeItem(at: self.root.appendingPathComponent("pki/crl.pem"))
        let noCRL = try self.run(self.meshctl, ["pki", "issue", "db2", "--dir", "pki", "--bundle"])
        XCTAssertEqual(noCRL.status, 2, noCRL.output)
        XCTAssertTrue(noCRL.stderr.contains("pki/crl.pem does not exist"), noCRL.stderr)
        XCTAssertFalse(FileManager.default.fileExists(atPath: self.root.appendingPathComponent("pki/db2-bundle.tar").path))
    }
}
