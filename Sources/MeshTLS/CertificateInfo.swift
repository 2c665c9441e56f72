import COpenSSL
import Foundation

/// What a certificate says, as plain values: whom it names, who signed it, when it is valid, its fingerprint.
public struct CertificateInfo: Codable, Sendable, Equatable {
    /// The subject in RFC 2253 form, e.g. `CN=db1`.
    public var subject: String
    public var commonName: String?
    public var issuer: String
    public var uriSANs: [String]
    public var dnsSANs: [String]
    /// Uppercase hex, as `openssl x509 -noout -serial` prints it.
    public var serial: String
    public var notBefore: Date
    public var notAfter: Date
    /// SHA-256 of the DER certificate as colon-separated hex, as `openssl x509 -fingerprint -sha256` prints it.
    public var sha256Fingerprint: String
    public var isCA: Bool

    init(_ certificate: Certificate) {
        let x509 = certificate.pointer
        subject = PKIOpenSSLValues.string(X509_get_subject_name(x509))
        commonName = PKIOpenSSLValues.commonName(X509_get_subject_name(x509))
        issuer = PKIOpenSSLValues.string(X509_get_issuer_name(x509))
        serial = PKIOpenSSLValues.hex(X509_get0_serialNumber(x509))
        notBefore = PKIOpenSSLValues.date(X509_get0_notBefore(x509)) ?? .distantPast
        notAfter = PKIOpenSSLValues.date(X509_get0_notAfter(x509)) ?? .distantPast
        isCA = X509_check_ca(x509) != 0

        var digest = [UInt8](repeating: 0, count: Int(EVP_MAX_MD_SIZE))
        var length: UInt32 = 0
        sha256Fingerprint =
            X509_digest(x509, EVP_sha256(), &digest, &length) == 1
            ? PKIOpenSSLValues.colonHex(digest.prefix(Int(length))) : ""

        var uris: [String] = []
        var dnsNames: [String] = []
        if let raw = X509_get_ext_d2i(x509, NID_subject_alt_name, nil, nil) {
            let names = OpaquePointer(raw)
            defer { tm_GENERAL_NAMES_free(names) }
            for index in 0..<max(0, tm_sk_GENERAL_NAME_num(names)) {
                guard let name = tm_sk_GENERAL_NAME_value(names, index) else { continue }
                switch name.pointee.type {
                case GEN_URI:
                    if let text = PKIOpenSSLValues.string(name.pointee.d.uniformResourceIdentifier) { uris.append(text) }
                case GEN_DNS:
                    if let text = PKIOpenSSLValues.string(name.pointee.d.dNSName) { dnsNames.append(text) }
                default:
                    break
                }
            }
        }
        uriSANs = uris
        dnsSANs = dnsNames
    }

    /// Reads a PEM certificate file and describes it.
    public init(pemFile path: String) throws {
        self.init(try Certificate(pemFile: path))
    }

    /// Whole days until `notAfter` (negative once expired).
    public func daysLeft(at now: Date = Date()) -> Int {
        Int((notAfter.timeIntervalSince(now) / 86_400).rounded(.down))
    }

    /// The mesh a CA certificate belongs to, from its `spiffe://<mesh>` URI SAN.
    public var spiffeTrustDomain: String? {
        for uri in uriSANs where uri.hasPrefix("spiffe://") {
            let rest = uri.dropFirst("spiffe://".count)
            let domain = rest.prefix(while: { $0 != "/" })
            if !domain.isEmpty && (rest.count == domain.count || rest == domain + "/") { return String(domain) }
        }
        return nil
    }
}
