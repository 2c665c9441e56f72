import Foundation
import MeshConfig
import MeshTestSupport
import XCTest

@testable import MeshTLS

/// A throwaway PKI made with the real `openssl` CLI in a temp directory: the mesh CA with its
/// `openssl ca` database (for back-dated, future-dated and revoked certificates and a CRL), a second
/// CA, and node certificates of every kind the tests need.
final class TLSTestPKI {
    let directory: URL

    init() throws {
        directory = FileManager.default.temporaryDirectory
            .appendingPathComponent("tunnelmesh-tls-\(getpid())-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        do {
            try build()
        } catch {
            remove()
            throw error
        }
    }

    func remove() {
        try? FileManager.default.removeItem(at: directory)
    }

    func path(_ name: String) -> String { directory.appendingPathComponent(name).path }

    /// The TLS files of a node certificate made by `build()`.
    func files(_ node: String, ca: String = "ca", crl: Bool = false) -> TLSFiles {
        TLSFiles(ca: path("\(ca).pem"), cert: path("\(node).pem"), key: path("\(node).key"), crl: crl ? path("crl.pem") : nil)
    }

    func context(_ role: TLSContext.Role, _ node: String, ca: String = "ca", crl: Bool = false) throws -> TLSContext {
        try TLSContext(role: role, files: files(node, ca: ca, crl: crl))
    }

    /// The mesh every test uses, with its declared nodes.
    static let mesh = "demo"
    static let declared: Set<String> = ["db1", "db2", "app1", "expired", "future", "revoked", "otherca", "selfsigned", "noid"]

    private func build() throws {
        // The mesh CA and its `openssl ca` database.
        try makeCA("ca", subject: "/CN=demo mesh CA")
        try "".write(toFile: path("index.txt"), atomically: true, encoding: .utf8)
        try "1000\n".write(toFile: path("serial"), atomically: true, encoding: .utf8)
        try FileManager.default.createDirectory(atPath: path("issued"), withIntermediateDirectories: true)
        try """
            [ ca ]
            default_ca = mesh
            [ mesh ]
            dir = \(directory.path)
            database = $dir/index.txt
            new_certs_dir = $dir/issued
            serial = $dir/serial
            certificate = $dir/ca.pem
            private_key = $dir/ca.key
            default_md = sha256
            default_days = 30
            default_crl_days = 30
            policy = anything
            unique_subject = no
            [ anything ]
            commonName = supplied

            """.write(toFile: path("ca.cnf"), atomically: true, encoding: .utf8)

        for node in ["db1", "db2", "app1"] {
            try issue(node, san: "URI:spiffe://demo/node/\(node),DNS:\(node)")
        }
        try issue("expired", san: "URI:spiffe://demo/node/expired", dates: ["-startdate", "20200101000000Z", "-enddate", "20210101000000Z"])
        try issue("future", san: "URI:spiffe://demo/node/future", dates: ["-startdate", "20990101000000Z", "-enddate", "21000101000000Z"])
        try issue("revoked", san: "URI:spiffe://demo/node/revoked")
        try issue("wrongmesh", san: "URI:spiffe://other/node/db1,DNS:db1", commonName: "db1")
        try issue("intruder", san: "URI:spiffe://demo/node/intruder")
        try issue("noid", san: "DNS:noid")
        try issue("twoids", san: "URI:spiffe://demo/node/db1,URI:spiffe://demo/node/db2", commonName: "db1")
        try openssl(["ca", "-batch", "-config", path("ca.cnf"), "-revoke", path("revoked.pem")])
        try openssl(["ca", "-batch", "-config", path("ca.cnf"), "-gencrl", "-out", path("crl.pem")])

        // Another CA issuing a certificate that claims to be a declared node.
        try makeCA("otherca-root", subject: "/CN=some other CA")
        try makeKeyAndRequest("otherca", commonName: "otherca")
        try writeExtensions("otherca", san: "URI:spiffe://demo/node/otherca")
        try openssl([
            "x509", "-req", "-in", path("otherca.csr"), "-CA", path("otherca-root.pem"), "-CAkey", path("otherca-root.key"),
            "-CAcreateserial", "-days", "30", "-extfile", path("otherca.ext"), "-extensions", "node", "-out", path("otherca.pem"),
        ])

        // A self-signed certificate with a perfectly good identity.
        try openssl([
            "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", path("selfsigned.key"),
            "-out", path("selfsigned.pem"), "-days", "30", "-subj", "/CN=selfsigned",
            "-addext", "subjectAltName=URI:spiffe://demo/node/selfsigned",
        ])
    }

    private func makeCA(_ name: String, subject: String) throws {
        try openssl([
            "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", path("\(name).key"),
            "-out", path("\(name).pem"), "-days", "3650", "-subj", subject,
            "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign",
        ])
    }

    private func makeKeyAndRequest(_ name: String, commonName: String) throws {
        try openssl([
            "req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", path("\(name).key"),
            "-out", path("\(name).csr"), "-subj", "/CN=\(commonName)",
        ])
    }

    private func writeExtensions(_ name: String, san: String) throws {
        try """
            [ node ]
            basicConstraints = CA:FALSE
            keyUsage = critical,digitalSignature
            extendedKeyUsage = serverAuth,clientAuth
            subjectAltName = \(san)

            """.write(toFile: path("\(name).ext"), atomically: true, encoding: .utf8)
    }

    private func issue(_ name: String, san: String, commonName: String? = nil, dates: [String] = ["-days", "30"]) throws {
        try makeKeyAndRequest(name, commonName: commonName ?? name)
        try writeExtensions(name, san: san)
        try openssl(
            ["ca", "-batch", "-notext", "-config", path("ca.cnf"), "-in", path("\(name).csr"), "-out", path("\(name).pem"),
             "-extfile", path("\(name).ext"), "-extensions", "node"] + dates)
    }

    @discardableResult
    func openssl(_ arguments: [String]) throws -> String {
        try Command.check("/usr/bin/openssl", arguments, timeout: .seconds(20))
    }
}

struct TLSTestFailure: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}
