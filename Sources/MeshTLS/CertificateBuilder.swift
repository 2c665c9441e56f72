import COpenSSL
import Foundation

/// Assembles and signs one X.509 v3 certificate: subject CN, validity window, public key and the
/// extensions, written in OpenSSL's own extension syntax (`critical,CA:TRUE`) so OpenSSL does the ASN.1.
struct CertificateBuilder {
    var commonName: String
    var notBefore: Date
    var notAfter: Date
    /// (NID, value) pairs such as `(NID_key_usage, "critical,digitalSignature")`, added in order.
    var extensions: [(nid: Int32, value: String)]

    /// Signs a certificate for `subjectKey`; with no `issuer` the certificate is self-signed by `subjectKey`.
    func sign(subjectKey: PKIPrivateKey, issuer: Certificate?, issuerKey: PKIPrivateKey) throws -> Certificate {
        guard let raw = X509_new() else { throw PKIError.openSSL("allocating a certificate") }
        let certificate = Certificate(owning: raw)
        let x509 = certificate.pointer

        guard X509_set_version(x509, Int(X509_VERSION_3)) == 1 else { throw PKIError.openSSL("setting the version") }
        let serial = try PKIOpenSSLValues.makeRandomSerial()
        defer { ASN1_INTEGER_free(serial) }
        guard X509_set_serialNumber(x509, serial) == 1 else { throw PKIError.openSSL("setting the serial number") }

        guard let name = X509_NAME_new() else { throw PKIError.openSSL("allocating a name") }
        defer { X509_NAME_free(name) }
        guard X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8, commonName, -1, -1, 0) == 1,
            X509_set_subject_name(x509, name) == 1
        else { throw PKIError.openSSL("setting the subject CN=\(commonName)") }
        let issuerName = issuer.map { X509_get_subject_name($0.pointer) } ?? name
        guard X509_set_issuer_name(x509, issuerName) == 1 else { throw PKIError.openSSL("setting the issuer") }

        let start = try PKIOpenSSLValues.makeTime(notBefore)
        defer { ASN1_TIME_free(start) }
        let end = try PKIOpenSSLValues.makeTime(notAfter)
        defer { ASN1_TIME_free(end) }
        guard X509_set1_notBefore(x509, start) == 1, X509_set1_notAfter(x509, end) == 1 else {
            throw PKIError.openSSL("setting the validity dates")
        }
        guard X509_set_pubkey(x509, subjectKey.pointer) == 1 else { throw PKIError.openSSL("setting the public key") }

        // The context tells OpenSSL where "hash" (SKI) and "keyid" (AKI) come from.
        var context = X509V3_CTX()
        tm_X509V3_set_ctx_nodb(&context)
        X509V3_set_ctx(&context, issuer?.pointer ?? x509, x509, nil, nil, 0)
        for (nid, value) in extensions {
            guard let extensionValue = X509V3_EXT_conf_nid(nil, &context, nid, value) else {
                throw PKIError.openSSL("building the extension \(String(cString: OBJ_nid2sn(nid))) = \(value)")
            }
            defer { X509_EXTENSION_free(extensionValue) }
            guard X509_add_ext(x509, extensionValue, -1) == 1 else { throw PKIError.openSSL("adding an extension") }
        }

        guard X509_sign(x509, issuerKey.pointer, EVP_sha256()) > 0 else { throw PKIError.openSSL("signing the certificate") }
        return certificate
    }
}
