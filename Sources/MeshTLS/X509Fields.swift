import COpenSSL
import Foundation
import MeshConfig

/// Reads the few X509 fields the TLS layer needs: the SPIFFE URI SAN, validity dates, the subject.
/// Takes borrowed `X509 *` pointers; never frees or keeps them.
enum X509Fields {
    /// Every URI entry of the subjectAltName extension.
    static func uriSANs(_ cert: OpaquePointer) -> [String] {
        guard let raw = X509_get_ext_d2i(cert, NID_subject_alt_name, nil, nil) else { return [] }
        let names = OpaquePointer(raw)
        defer { tm_GENERAL_NAMES_free(names) }
        var uris: [String] = []
        for index in 0..<tm_sk_GENERAL_NAME_num(names) {
            guard let name = tm_sk_GENERAL_NAME_value(names, index), name.pointee.type == GEN_URI,
                let ia5 = name.pointee.d.uniformResourceIdentifier, let bytes = ASN1_STRING_get0_data(ia5)
            else { continue }
            let length = Int(ASN1_STRING_length(ia5))
            uris.append(String(decoding: UnsafeBufferPointer(start: bytes, count: length), as: UTF8.self))
        }
        return uris
    }

    /// The mesh identity a certificate carries, or why it carries none. SPIFFE requires exactly one
    /// `spiffe://` URI SAN; two would leave the identity ambiguous, so that is refused too.
    static func meshIdentity(_ cert: OpaquePointer) -> Result<MeshIdentity, TLSHandshakeError> {
        let spiffe = uriSANs(cert).filter { $0.hasPrefix("spiffe://") }
        let subject = subjectText(cert)
        guard spiffe.count == 1, let uri = spiffe.first else {
            let problem =
                spiffe.isEmpty
                ? "has no spiffe:// URI SAN" : "has \(spiffe.count) spiffe:// URI SANs (\(spiffe.joined(separator: ", ")))"
            return .failure(
                TLSHandshakeError(
                    .noIdentity,
                    "peer certificate \(subject) \(problem); it needs exactly one, spiffe://<mesh>/node/<name>"
                )
            )
        }
        guard let identity = MeshIdentity(uri: uri) else {
            return .failure(
                TLSHandshakeError(
                    .noIdentity,
                    "peer certificate \(subject) has URI SAN \(uri), not of the form spiffe://<mesh>/node/<name>"
                )
            )
        }
        return .success(identity)
    }

    static func notAfter(_ cert: OpaquePointer) -> Date? { date(X509_get0_notAfter(cert)) }
    static func notBefore(_ cert: OpaquePointer) -> Date? { date(X509_get0_notBefore(cert)) }

    /// Both dates; an unreadable notAfter counts as already past, so nothing trusts it for long.
    static func validity(_ cert: OpaquePointer) -> CertificateValidity {
        CertificateValidity(notBefore: notBefore(cert) ?? .distantPast, notAfter: notAfter(cert) ?? .distantPast)
    }

    /// Lowercase hex SHA-256 of the certificate's DER: names a CA certificate across reloads.
    static func fingerprint(_ cert: OpaquePointer) -> String {
        var digest = [UInt8](repeating: 0, count: Int(EVP_MAX_MD_SIZE))
        var length: UInt32 = 0
        guard X509_digest(cert, EVP_sha256(), &digest, &length) == 1 else { return "" }
        return digest.prefix(Int(length)).map { String(format: "%02x", $0) }.joined()
    }

    /// The subject as one readable line, e.g. "CN=db1".
    static func subjectText(_ cert: OpaquePointer) -> String {
        guard let name = X509_get_subject_name(cert), let line = X509_NAME_oneline(name, nil, 0) else { return "?" }
        defer { CRYPTO_free(line, #fileID, #line) }
        // X509_NAME_oneline writes "/CN=db1/O=x"; show it as "CN=db1, O=x".
        return String(cString: line).split(separator: "/").joined(separator: ", ")
    }

    static func date(_ time: UnsafePointer<ASN1_TIME>?) -> Date? {
        guard let time else { return nil }
        var parts = tm()
        guard ASN1_TIME_to_tm(time, &parts) == 1 else { return nil }
        return Date(timeIntervalSince1970: TimeInterval(timegm(&parts)))
    }

    static func text(_ date: Date?) -> String {
        guard let date else { return "an unreadable date" }
        return ISO8601DateFormatter().string(from: date)
    }
}
