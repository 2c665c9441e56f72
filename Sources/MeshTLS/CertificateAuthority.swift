import COpenSSL
import Foundation
import MeshConfig

/// A mesh's certificate authority kept in a PKI directory: creates the CA, issues node certificates
/// and keeps the CRL. Files: `ca.pem`, `ca.key` (0600), `crl.pem`, `<node>.pem`, `<node>.key` (0600).
public final class CertificateAuthority {
    public static let defaultCADays = 3650
    public static let defaultNodeDays = 90
    /// A CRL's lifetime; after it OpenSSL rejects the CRL, so `revoke` (or a new `init`) must re-sign it before then.
    public static let revocationListDays = 365
    /// Certificates start this long before "now", so a peer whose clock runs a little behind accepts them at once.
    public static let clockSkewAllowance: TimeInterval = 3600
    static let allowedDays = 1...36_500

    public let directory: PKIDirectory
    /// The mesh name, read back from the CA certificate's `spiffe://<mesh>` URI SAN.
    public let meshName: String
    public let certificate: Certificate
    private let key: PKIPrivateKey

    /// What `revoke` did.
    public enum Revocation: Sendable, Equatable {
        case revoked(serial: String, crlNumber: Int, entries: Int)
        case alreadyRevoked(serial: String, crlNumber: Int)
    }

    private init(directory: PKIDirectory, meshName: String, certificate: Certificate, key: PKIPrivateKey) {
        self.directory = directory
        self.meshName = meshName
        self.certificate = certificate
        self.key = key
    }

    /// Opens the CA in `directory`, checking that `ca.key` belongs to `ca.pem` and that the CA names its mesh.
    public convenience init(loadingFrom directory: PKIDirectory) throws {
        let hint = "run 'meshctl pki init --mesh NAME --dir \(directory.path)' first"
        let certificate = try Certificate(pemFile: directory.caCertificate, missingHint: hint)
        let key = try PKIPrivateKey(pem: PKIFile.read(directory.caKey, missingHint: hint), source: directory.caKey)
        guard certificate.matches(key) else {
            throw PKIError("\(directory.caKey): this key does not belong to \(directory.caCertificate) — restore the matching pair")
        }
        let info = certificate.info
        guard info.isCA else {
            throw PKIError(
                "\(directory.caCertificate): not a CA certificate (basicConstraints CA:TRUE missing) — point --dir at the mesh's PKI directory"
            )
        }
        guard let mesh = info.spiffeTrustDomain else {
            throw PKIError(
                "\(directory.caCertificate): has no 'spiffe://<mesh>' URI SAN, so the mesh name is unknown — create the CA with 'meshctl pki init'"
            )
        }
        self.init(directory: directory, meshName: mesh, certificate: certificate, key: key)
    }

    /// Creates a new CA for `mesh` in `directory` (made 0700 if missing) with an empty CRL.
    /// Refuses to replace an existing CA unless `force`, since that orphans every certificate it issued.
    public static func create(
        mesh: String,
        in directory: PKIDirectory,
        days: Int = defaultCADays,
        force: Bool = false,
        now: Date = Date()
    ) throws -> CertificateAuthority {
        try PKIName.validateMesh(mesh)
        try checkDays(days)
        if !force, let existing = [directory.caCertificate, directory.caKey].first(where: PKIFile.exists) {
            throw PKIError(
                "\(existing) already exists — a new CA would invalidate every certificate the old one issued; pass --force to replace it"
            )
        }
        try PKIFile.createDirectory(directory.path)

        let key = try PKIPrivateKey.generateP256()
        let notBefore = now.addingTimeInterval(-clockSkewAllowance)
        let builder = CertificateBuilder(
            commonName: "tunnelmesh \(mesh) CA",
            notBefore: notBefore,
            notAfter: notBefore.addingTimeInterval(TimeInterval(days) * 86_400),
            extensions: [
                (NID_basic_constraints, "critical,CA:TRUE"),
                (NID_key_usage, "critical,keyCertSign,cRLSign"),
                (NID_subject_key_identifier, "hash"),
                (NID_subject_alt_name, "URI:spiffe://\(mesh)"),
            ]
        )
        let certificate = try builder.sign(subjectKey: key, issuer: nil, issuerKey: key)
        let crl = try RevocationList.sign(
            issuer: certificate,
            key: key,
            number: 1,
            keeping: nil,
            revoking: nil,
            now: now,
            days: revocationListDays
        )

        try PKIFile.write(key.pem(), to: directory.caKey, mode: 0o600)
        try PKIFile.write(certificate.pem(), to: directory.caCertificate, mode: 0o644)
        try PKIFile.write(crl.pem(), to: directory.revocationList, mode: 0o644)
        return CertificateAuthority(directory: directory, meshName: mesh, certificate: certificate, key: key)
    }

    /// Issues `<node>.key` (0600) and `<node>.pem` with CN = node and the SANs `spiffe://<mesh>/node/<node>`
    /// and DNS:node. `notBefore` defaults to now minus `clockSkewAllowance`; a test passes an explicit
    /// date to make expired or not-yet-valid certificates. `validFor`, when given, ends the certificate
    /// that long after `now` instead of `days` after `notBefore` (short-lived certificates, and tests
    /// of their rotation). Refuses to replace existing files unless `force`.
    @discardableResult
    public func issue(
        node: String,
        days: Int = defaultNodeDays,
        validFor: Duration? = nil,
        notBefore: Date? = nil,
        force: Bool = false,
        now: Date = Date()
    ) throws -> CertificateInfo {
        try PKIName.validateNode(node)
        try Self.checkDays(days)
        if let validFor, validFor <= .zero || validFor > .seconds(Int64(Self.allowedDays.upperBound) * 86_400) {
            throw PKIError("--valid-for must be more than zero and at most \(Self.allowedDays.upperBound) days")
        }
        let certificatePath = directory.certificate(node: node)
        let keyPath = directory.key(node: node)
        if !force, let existing = [certificatePath, keyPath].first(where: PKIFile.exists) {
            throw PKIError(
                "\(existing) already exists — pass --force to replace \(node)'s key and certificate (then revoke the old one if it leaked)"
            )
        }

        let start = notBefore ?? now.addingTimeInterval(-Self.clockSkewAllowance)
        let end =
            validFor.map { now.addingTimeInterval($0.timeInterval) }
            ?? start.addingTimeInterval(TimeInterval(days) * 86_400)
        let caInfo = certificate.info
        guard end <= caInfo.notAfter else {
            throw PKIError(
                "\(node)'s certificate would end \(end) but the CA in \(directory.caCertificate) ends \(caInfo.notAfter) — use fewer --days or create a new CA"
            )
        }

        let nodeKey = try PKIPrivateKey.generateP256()
        let builder = CertificateBuilder(
            commonName: node,
            notBefore: start,
            notAfter: end,
            extensions: [
                (NID_basic_constraints, "critical,CA:FALSE"),
                (NID_key_usage, "critical,digitalSignature"),
                (NID_ext_key_usage, "serverAuth,clientAuth"),
                (NID_subject_key_identifier, "hash"),
                (NID_authority_key_identifier, "keyid:always"),
                (NID_subject_alt_name, "URI:spiffe://\(meshName)/node/\(node),DNS:\(node)"),
            ]
        )
        let nodeCertificate = try builder.sign(subjectKey: nodeKey, issuer: certificate, issuerKey: key)

        try PKIFile.write(nodeKey.pem(), to: keyPath, mode: 0o600)
        try PKIFile.write(nodeCertificate.pem(), to: certificatePath, mode: 0o644)
        return nodeCertificate.info
    }

    /// Adds `<node>.pem`'s serial to `crl.pem`, keeping earlier entries, with the CRL number bumped and
    /// a fresh signature. Revoking an already revoked certificate changes nothing.
    public func revoke(node: String, now: Date = Date()) throws -> Revocation {
        try PKIName.validateNode(node)
        let certificatePath = directory.certificate(node: node)
        let nodeCertificate = try Certificate(
            pemFile: certificatePath,
            missingHint: "revoke needs the certificate to read its serial; copy it back into \(directory.path)"
        )
        guard nodeCertificate.isIssued(by: certificate) else {
            throw PKIError("\(certificatePath) was not issued by the CA in \(directory.caCertificate) — nothing to revoke here")
        }
        let current = try revocationList()
        let currentInfo = current.info
        let serial = nodeCertificate.info.serial
        let number = currentInfo.number ?? 0
        if currentInfo.revokes(serial: serial) {
            return .alreadyRevoked(serial: serial, crlNumber: number)
        }
        let updated = try RevocationList.sign(
            issuer: certificate,
            key: key,
            number: number + 1,
            keeping: current,
            revoking: nodeCertificate,
            now: now,
            days: Self.revocationListDays
        )
        try PKIFile.write(updated.pem(), to: directory.revocationList, mode: 0o644)
        return .revoked(serial: serial, crlNumber: number + 1, entries: currentInfo.revoked.count + 1)
    }

    /// The directory's CRL, checked to be signed by this CA.
    public func revocationList() throws -> RevocationList {
        let path = directory.revocationList
        let crl = try RevocationList(
            pemFile: path,
            missingHint: "restore it from a backup; a new empty CRL would silently un-revoke every earlier entry"
        )
        guard crl.isSigned(by: certificate) else {
            throw PKIError("\(path) is not signed by the CA in \(directory.caCertificate) — restore the CRL that belongs to this CA")
        }
        return crl
    }

    private static func checkDays(_ days: Int) throws {
        guard allowedDays.contains(days) else {
            throw PKIError("--days \(days) is out of range — use 1 to \(allowedDays.upperBound)")
        }
    }
}
