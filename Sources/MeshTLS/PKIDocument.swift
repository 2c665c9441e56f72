import Foundation

/// A PEM file `meshctl pki show` can describe: a certificate or a CRL, told apart by its PEM header.
public enum PKIDocument: Sendable, Equatable {
    case certificate(CertificateInfo)
    case revocationList(RevocationListInfo)

    public init(pemFile path: String) throws {
        let data = try PKIFile.read(path, missingHint: "check the path")
        let text = String(decoding: data, as: UTF8.self)
        if text.contains("-----BEGIN CERTIFICATE-----") {
            self = .certificate(try Certificate(pem: data, source: path).info)
        } else if text.contains("-----BEGIN X509 CRL-----") {
            self = .revocationList(try RevocationList(pem: data, source: path).info)
        } else if text.contains("PRIVATE KEY-----") {
            throw PKIError("\(path): is a private key — show reads certificates and CRLs; give it the matching .pem file")
        } else {
            throw PKIError("\(path): neither a PEM certificate nor a PEM CRL — show reads ca.pem, <node>.pem and crl.pem files")
        }
    }
}
