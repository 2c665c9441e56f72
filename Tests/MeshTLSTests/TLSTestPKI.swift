import COpenSSL
import Foundation
import MeshConfig
import XCTest

@testable import MeshTLS

/// A throwaway PKI for the TLS tests, made in-process with MeshTLS's own certificate builder (no
/// `openssl` process: this is a unit-test target) in a temp directory: the mesh CA and its CRL, a
/// second CA, and node certificates of every kind the tests need (back- and future-dated, revoked,
/// wrong mesh, no or two identities, self-signed). `ProcessTests` checks the same builder's output
/// against the real `openssl` (`PKIRoundTripTests`).
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

    /// The mesh CA's key, for CRLs the tests sign later (`staleRevocationList`).
    private var caKey: PKIPrivateKey?
    private var caCertificate: Certificate?

    private func build() throws {
        let now = Date()
        let day: TimeInterval = 86_400
        let (ca, caKey) = try self.makeCA("ca", commonName: "demo mesh CA", now: now)
        self.caCertificate = ca
        self.caKey = caKey
        func issue(
            _ name: String,
            san: String,
            commonName: String? = nil,
            from: Date = now - 3_600,
            until: Date = now + 30 * day
        ) throws -> Certificate {
            try self.issue(name, san: san, commonName: commonName ?? name, notBefore: from, notAfter: until, issuer: (ca, caKey))
        }
        for node in ["db1", "db2", "app1"] {
            _ = try issue(node, san: "URI:spiffe://demo/node/\(node),DNS:\(node)")
        }
        _ = try issue("expired", san: "URI:spiffe://demo/node/expired", from: Self.utc("2020-01-01"), until: Self.utc("2021-01-01"))
        _ = try issue("future", san: "URI:spiffe://demo/node/future", from: Self.utc("2099-01-01"), until: Self.utc("2100-01-01"))
        let revoked = try issue("revoked", san: "URI:spiffe://demo/node/revoked")
        _ = try issue("wrongmesh", san: "URI:spiffe://other/node/db1,DNS:db1", commonName: "db1")
        _ = try issue("intruder", san: "URI:spiffe://demo/node/intruder")
        _ = try issue("noid", san: "DNS:noid")
        _ = try issue("twoids", san: "URI:spiffe://demo/node/db1,URI:spiffe://demo/node/db2", commonName: "db1")
        let crl = try RevocationList.sign(issuer: ca, key: caKey, number: 1, keeping: nil, revoking: revoked, now: now, days: 30)
        try crl.pem().write(to: URL(fileURLWithPath: path("crl.pem")))

        // Another CA issuing a certificate that claims to be a declared node.
        let other = try self.makeCA("otherca-root", commonName: "some other CA", now: now)
        _ = try self.issue(
            "otherca",
            san: "URI:spiffe://demo/node/otherca",
            commonName: "otherca",
            notBefore: now - 3_600,
            notAfter: now + 30 * day,
            issuer: other
        )

        // A self-signed certificate with a perfectly good identity.
        _ = try self.issue(
            "selfsigned",
            san: "URI:spiffe://demo/node/selfsigned",
            commonName: "selfsigned",
            notBefore: now - 3_600,
            notAfter: now + 30 * day,
            issuer: nil
        )
    }

    /// A CRL of the mesh CA whose nextUpdate has passed (2020-01-01 to 2020-02-01), written to `name`.
    func staleRevocationList(_ name: String) throws -> String {
        let crl = try RevocationList.sign(
            issuer: self.caCertificate!,
            key: self.caKey!,
            number: 2,
            keeping: nil,
            revoking: nil,
            now: Self.utc("2020-01-01"),
            days: 31
        )
        try crl.pem().write(to: URL(fileURLWithPath: path(name)))
        return path(name)
    }

    /// The key of `node` as PEM encrypted with AES-256 under `passphrase`, written to `name`.
    func encryptedKey(_ node: String, passphrase: String, to name: String) throws -> String {
        let key = try PKIPrivateKey(pem: Data(contentsOf: URL(fileURLWithPath: path("\(node).key"))), source: path("\(node).key"))
        let bio = try PKIMemoryBIO()
        let written = passphrase.withCString { secret in
            PEM_write_bio_PrivateKey(bio.pointer, key.pointer, EVP_aes_256_cbc(), nil, 0, nil, UnsafeMutableRawPointer(mutating: secret))
        }
        guard written == 1 else { throw TLSTestFailure("encrypting \(node)'s key") }
        try bio.data.write(to: URL(fileURLWithPath: path(name)))
        return path(name)
    }

    private func makeCA(_ name: String, commonName: String, now: Date) throws -> (Certificate, PKIPrivateKey) {
        let key = try PKIPrivateKey.generateP256()
        let certificate = try CertificateBuilder(
            commonName: commonName,
            notBefore: now - 3_600,
            notAfter: now + 3_650 * 86_400,
            extensions: [
                (NID_basic_constraints, "critical,CA:TRUE"), (NID_key_usage, "critical,keyCertSign,cRLSign"),
                (NID_subject_key_identifier, "hash"),
            ]
        ).sign(subjectKey: key, issuer: nil, issuerKey: key)
        try self.write(certificate, key, name)
        return (certificate, key)
    }

    /// A node certificate with the extensions `meshctl pki issue` gives, but any SAN and dates;
    /// with no issuer it is self-signed.
    private func issue(
        _ name: String,
        san: String,
        commonName: String,
        notBefore: Date,
        notAfter: Date,
        issuer: (Certificate, PKIPrivateKey)?
    ) throws -> Certificate {
        let key = try PKIPrivateKey.generateP256()
        var extensions: [(nid: Int32, value: String)] = [
            (NID_basic_constraints, "critical,CA:FALSE"), (NID_key_usage, "critical,digitalSignature"),
            (NID_ext_key_usage, "serverAuth,clientAuth"), (NID_subject_key_identifier, "hash"),
        ]
        if issuer != nil { extensions.append((NID_authority_key_identifier, "keyid:always")) }
        extensions.append((NID_subject_alt_name, san))
        let certificate = try CertificateBuilder(commonName: commonName, notBefore: notBefore, notAfter: notAfter, extensions: extensions)
            .sign(subjectKey: key, issuer: issuer?.0, issuerKey: issuer?.1 ?? key)
        try self.write(certificate, key, name)
        return certificate
    }

    private func write(_ certificate: Certificate, _ key: PKIPrivateKey, _ name: String) throws {
        try certificate.pem().write(to: URL(fileURLWithPath: path("\(name).pem")))
        try key.pem().write(to: URL(fileURLWithPath: path("\(name).key")))
    }

    private static func utc(_ day: String) -> Date {
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withFullDate]
        return formatter.date(from: day)!
    }
}

struct TLSTestFailure: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}
