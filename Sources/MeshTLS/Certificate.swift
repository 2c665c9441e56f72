import COpenSSL
import Foundation

/// An X.509 certificate held by OpenSSL (an owned `X509*`), read from and written as PEM.
public final class Certificate {
    let pointer: OpaquePointer

    init(owning pointer: OpaquePointer) {
        self.pointer = pointer
    }

    deinit { X509_free(pointer) }

    /// Parses the first PEM certificate in `pem`; `source` names the file in error messages.
    public convenience init(pem: Data, source: String) throws {
        let bio = try PKIMemoryBIO(pem)
        ERR_clear_error()
        guard let certificate = PEM_read_bio_X509(bio.pointer, nil, nil, nil) else {
            ERR_clear_error()
            throw PKIError("\(source): not a PEM certificate (no readable '-----BEGIN CERTIFICATE-----' block) — check the file")
        }
        self.init(owning: certificate)
    }

    /// Reads a PEM certificate file; `missingHint` says what to do when the file does not exist.
    public convenience init(pemFile path: String, missingHint: String = "check the path") throws {
        try self.init(pem: PKIFile.read(path, missingHint: missingHint), source: path)
    }

    public func pem() throws -> Data {
        let bio = try PKIMemoryBIO()
        guard PEM_write_bio_X509(bio.pointer, pointer) == 1 else { throw PKIError.openSSL("encoding a certificate as PEM") }
        return bio.data
    }

    /// The certificate's fields as plain values.
    public var info: CertificateInfo { CertificateInfo(self) }

    /// True when `issuer` is named as this certificate's issuer and its key made the signature.
    public func isIssued(by issuer: Certificate) -> Bool {
        guard X509_check_issued(issuer.pointer, pointer) == X509_V_OK,
            let issuerKey = X509_get0_pubkey(issuer.pointer)
        else { return false }
        let verified = X509_verify(pointer, issuerKey) == 1
        ERR_clear_error()
        return verified
    }

    /// True when the PEM private key in `keyFile` is the key of this certificate; throws when the file
    /// cannot be read or holds no unencrypted PEM key.
    public func matchesKey(inFile keyFile: String) throws -> Bool {
        self.matches(try PKIPrivateKey(pem: PKIFile.read(keyFile, missingHint: "check tls.key in mesh.json"), source: keyFile))
    }

    /// True when `key` is the private key for this certificate's public key.
    func matches(_ key: PKIPrivateKey) -> Bool {
        let matched = X509_check_private_key(pointer, key.pointer) == 1
        ERR_clear_error()
        return matched
    }
}
