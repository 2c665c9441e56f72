import COpenSSL
import Foundation

/// An owned OpenSSL private key (EVP_PKEY): a fresh ECDSA P-256 key or one read from a PEM file.
final class PKIPrivateKey {
    let pointer: OpaquePointer

    private init(owning pointer: OpaquePointer) {
        self.pointer = pointer
    }

    deinit { EVP_PKEY_free(pointer) }

    static func generateP256() throws -> PKIPrivateKey {
        guard let key = tm_EVP_EC_gen("P-256") else { throw PKIError.openSSL("generating a P-256 key") }
        return PKIPrivateKey(owning: key)
    }

    /// Reads a PEM private key; `source` names the file in error messages.
    convenience init(pem: Data, source: String) throws {
        let bio = try PKIMemoryBIO(pem)
        ERR_clear_error()
        guard let key = PEM_read_bio_PrivateKey(bio.pointer, nil, nil, nil) else {
            ERR_clear_error()
            throw PKIError("\(source): not a PEM private key (or it is encrypted) — restore the key file that belongs to this certificate")
        }
        self.init(owning: key)
    }

    /// The key as unencrypted PKCS#8 PEM; the file it goes to is mode 0600.
    func pem() throws -> Data {
        let bio = try PKIMemoryBIO()
        guard PEM_write_bio_PrivateKey(bio.pointer, pointer, nil, nil, 0, nil, nil) == 1 else {
            throw PKIError.openSSL("encoding the private key as PEM")
        }
        return bio.data
    }
}
