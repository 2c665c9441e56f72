import COpenSSL
import Foundation

/// A signed certificate revocation list (an owned `X509_CRL*`): read from PEM, described, or re-signed
/// by the CA with one more revoked serial.
public final class RevocationList {
    let pointer: OpaquePointer

    init(owning pointer: OpaquePointer) {
        self.pointer = pointer
    }

    deinit { X509_CRL_free(pointer) }

    /// Parses the first PEM CRL in `pem`; `source` names the file in error messages.
    public convenience init(pem: Data, source: String) throws {
        let bio = try PKIMemoryBIO(pem)
        ERR_clear_error()
        guard let crl = PEM_read_bio_X509_CRL(bio.pointer, nil, nil, nil) else {
            ERR_clear_error()
            throw PKIError("\(source): not a PEM CRL (no readable '-----BEGIN X509 CRL-----' block) — check the file")
        }
        self.init(owning: crl)
    }

    /// Reads a PEM CRL file; `missingHint` says what to do when the file does not exist.
    public convenience init(pemFile path: String, missingHint: String = "check the path") throws {
        try self.init(pem: PKIFile.read(path, missingHint: missingHint), source: path)
    }

    public func pem() throws -> Data {
        let bio = try PKIMemoryBIO()
        guard PEM_write_bio_X509_CRL(bio.pointer, pointer) == 1 else { throw PKIError.openSSL("encoding a CRL as PEM") }
        return bio.data
    }

    public var info: RevocationListInfo {
        var entries: [RevocationListInfo.Entry] = []
        if let stack = X509_CRL_get_REVOKED(pointer) {
            for index in 0..<max(0, tm_sk_X509_REVOKED_num(stack)) {
                guard let entry = tm_sk_X509_REVOKED_value(stack, index) else { continue }
                entries.append(
                    .init(
                        serial: PKIOpenSSLValues.hex(X509_REVOKED_get0_serialNumber(entry)),
                        revocationDate: PKIOpenSSLValues.date(X509_REVOKED_get0_revocationDate(entry)) ?? .distantPast
                    )
                )
            }
        }
        var number: Int?
        if let raw = X509_CRL_get_ext_d2i(pointer, NID_crl_number, nil, nil) {
            let integer = raw.assumingMemoryBound(to: ASN1_INTEGER.self)
            number = ASN1_INTEGER_get(integer)
            ASN1_INTEGER_free(integer)
        }
        return RevocationListInfo(
            issuer: PKIOpenSSLValues.string(X509_CRL_get_issuer(pointer)),
            lastUpdate: PKIOpenSSLValues.date(X509_CRL_get0_lastUpdate(pointer)) ?? .distantPast,
            nextUpdate: PKIOpenSSLValues.date(X509_CRL_get0_nextUpdate(pointer)),
            number: number,
            revoked: entries
        )
    }

    /// True when `issuer` is named as this CRL's issuer and its key made the signature.
    public func isSigned(by issuer: Certificate) -> Bool {
        guard X509_NAME_cmp(X509_CRL_get_issuer(pointer), X509_get_subject_name(issuer.pointer)) == 0,
            let key = X509_get0_pubkey(issuer.pointer)
        else { return false }
        let verified = X509_CRL_verify(pointer, key) == 1
        ERR_clear_error()
        return verified
    }

    /// A new CRL signed by `issuer`: every entry of `previous`, plus `revoking`'s serial, valid `days` from `now`.
    static func sign(
        issuer: Certificate,
        key: PKIPrivateKey,
        number: Int,
        keeping previous: RevocationList?,
        revoking: Certificate?,
        now: Date,
        days: Int
    ) throws -> RevocationList {
        guard let raw = X509_CRL_new() else { throw PKIError.openSSL("allocating a CRL") }
        let list = RevocationList(owning: raw)
        let crl = list.pointer

        guard X509_CRL_set_version(crl, Int(X509_CRL_VERSION_2)) == 1,
            X509_CRL_set_issuer_name(crl, X509_get_subject_name(issuer.pointer)) == 1
        else { throw PKIError.openSSL("setting the CRL's version and issuer") }

        let lastUpdate = try PKIOpenSSLValues.makeTime(now)
        defer { ASN1_TIME_free(lastUpdate) }
        let nextUpdate = try PKIOpenSSLValues.makeTime(now.addingTimeInterval(TimeInterval(days) * 86_400))
        defer { ASN1_TIME_free(nextUpdate) }
        guard X509_CRL_set1_lastUpdate(crl, lastUpdate) == 1, X509_CRL_set1_nextUpdate(crl, nextUpdate) == 1 else {
            throw PKIError.openSSL("setting the CRL's update times")
        }

        if let previous, let stack = X509_CRL_get_REVOKED(previous.pointer) {
            for index in 0..<max(0, tm_sk_X509_REVOKED_num(stack)) {
                guard let copy = X509_REVOKED_dup(tm_sk_X509_REVOKED_value(stack, index)),
                    X509_CRL_add0_revoked(crl, copy) == 1
                else { throw PKIError.openSSL("copying a revoked entry from the previous CRL") }
            }
        }
        if let revoking {
            guard let entry = X509_REVOKED_new() else { throw PKIError.openSSL("allocating a revoked entry") }
            guard X509_REVOKED_set_serialNumber(entry, UnsafeMutablePointer(mutating: X509_get0_serialNumber(revoking.pointer))) == 1,
                X509_REVOKED_set_revocationDate(entry, lastUpdate) == 1,
                X509_CRL_add0_revoked(crl, entry) == 1
            else {
                X509_REVOKED_free(entry)
                throw PKIError.openSSL("adding the revoked serial")
            }
        }
        X509_CRL_sort(crl)

        guard let crlNumber = ASN1_INTEGER_new() else { throw PKIError.openSSL("allocating the CRL number") }
        defer { ASN1_INTEGER_free(crlNumber) }
        guard ASN1_INTEGER_set(crlNumber, number) == 1,
            X509_CRL_add1_ext_i2d(crl, NID_crl_number, crlNumber, 0, 0) == 1
        else { throw PKIError.openSSL("setting the CRL number") }

        var context = X509V3_CTX()
        tm_X509V3_set_ctx_nodb(&context)
        X509V3_set_ctx(&context, issuer.pointer, nil, nil, crl, 0)
        guard let authorityKey = X509V3_EXT_conf_nid(nil, &context, NID_authority_key_identifier, "keyid:always") else {
            throw PKIError.openSSL("building the CRL's authority key identifier")
        }
        defer { X509_EXTENSION_free(authorityKey) }
        guard X509_CRL_add_ext(crl, authorityKey, -1) == 1 else { throw PKIError.openSSL("adding the CRL's authority key identifier") }

        guard X509_CRL_sign(crl, key.pointer, EVP_sha256()) > 0 else { throw PKIError.openSSL("signing the CRL") }
        return list
    }
}
