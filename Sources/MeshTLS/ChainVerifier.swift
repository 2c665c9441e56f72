import COpenSSL
import Foundation

/// Checks a certificate file offline the way a peer's handshake would, with OpenSSL's own path
/// validation (`X509_verify_cert`): a chain to the CA file's certificates, fit for TLS client and
/// server use, and — when a CRL is given — not revoked. For `meshctl check`, before meshd is started.
public enum ChainVerifier {
    /// What OpenSSL concluded about the certificate.
    public enum Outcome: Sendable, Equatable {
        case verified
        /// On the CRL.
        case revoked
        /// OpenSSL's reason (`X509_verify_cert_error_string`) and where in the chain (0 = the certificate itself).
        case rejected(reason: String, depth: Int)
    }

    /// The TLS roles a node certificate must serve: it dials peers (client) and accepts them (server).
    public enum Purpose: Sendable, CaseIterable {
        case tlsClient, tlsServer

        var openSSL: Int32 {
            switch self {
            case .tlsClient: X509_PURPOSE_SSL_CLIENT
            case .tlsServer: X509_PURPOSE_SSL_SERVER
            }
        }
    }

    /// Verifies the first certificate of `certificateFile` (any certificates after it are offered as
    /// intermediates) against every certificate in `caFile`, for `purpose`.
    ///
    /// - Parameters:
    ///   - crlFile: when given, every CRL in it is loaded and revocation is checked, as meshd does.
    ///   - time: the instant to check validity dates at; nil skips every date check (the certificate's
    ///     and the CRL's), so a chain or revocation problem is not hidden behind an expiry.
    /// - Throws: `PKIError` when a file is missing or holds no PEM certificate (or CRL).
    public static func verify(
        certificateFile: String,
        caFile: String,
        crlFile: String? = nil,
        purpose: Purpose,
        at time: Date?
    ) throws -> Outcome {
        let chain = try self.certificates(in: certificateFile, what: "certificate")
        let authorities = try self.certificates(in: caFile, what: "CA certificate")
        let crls = try crlFile.map { try self.revocationLists(in: $0) } ?? []
        // The verification context borrows these pointers without a reference of its own: keep the
        // owners alive until after the frees below (this defer runs last). An optimized build freed
        // `chain` after its last Swift use, before X509_verify_cert, and crashed with a double free.
        defer { withExtendedLifetime((chain, authorities, crls)) {} }

        guard let store = X509_STORE_new() else { throw PKIError.openSSL("allocating a certificate store") }
        defer { X509_STORE_free(store) }
        for authority in authorities {
            guard X509_STORE_add_cert(store, authority.pointer) == 1 else {
                throw PKIError.openSSL("adding \(caFile) to the certificate store")
            }
        }
        for crl in crls {
            guard X509_STORE_add_crl(store, crl.pointer) == 1 else {
                throw PKIError.openSSL("adding \(crlFile ?? "the CRL") to the certificate store")
            }
        }

        // STACK_OF(X509) through OpenSSL's untyped stack functions (the typed ones are macros).
        guard let intermediates = OPENSSL_sk_new_null() else { throw PKIError.openSSL("allocating a certificate stack") }
        defer { OPENSSL_sk_free(intermediates) }
        for certificate in chain.dropFirst() {
            guard OPENSSL_sk_push(intermediates, UnsafeRawPointer(certificate.pointer)) > 0 else {
                throw PKIError.openSSL("collecting the intermediates of \(certificateFile)")
            }
        }

        guard let context = X509_STORE_CTX_new() else { throw PKIError.openSSL("allocating a verification context") }
        defer { X509_STORE_CTX_free(context) }
        guard X509_STORE_CTX_init(context, store, chain[0].pointer, intermediates) == 1 else {
            throw PKIError.openSSL("starting the verification of \(certificateFile)")
        }
        var flags = UInt(0)
        if !crls.isEmpty { flags |= UInt(X509_V_FLAG_CRL_CHECK) }
        if let time {
            X509_STORE_CTX_set_time(context, 0, time_t(time.timeIntervalSince1970.rounded(.down)))
        } else {
            flags |= UInt(X509_V_FLAG_NO_CHECK_TIME)
        }
        X509_STORE_CTX_set_flags(context, flags)
        guard X509_STORE_CTX_set_purpose(context, purpose.openSSL) == 1 else {
            throw PKIError.openSSL("setting the verification purpose")
        }

        let verified = X509_verify_cert(context) == 1
        ERR_clear_error()
        if verified { return .verified }
        let code = X509_STORE_CTX_get_error(context)
        if code == X509_V_ERR_CERT_REVOKED { return .revoked }
        let reason = X509_verify_cert_error_string(Int(code)).map { String(cString: $0) } ?? "error \(code)"
        return .rejected(reason: reason, depth: Int(X509_STORE_CTX_get_error_depth(context)))
    }

    /// Every PEM certificate in the file, in order; at least one.
    static func certificates(in path: String, what: String) throws -> [Certificate] {
        let bio = try PKIMemoryBIO(PKIFile.read(path, missingHint: "check the path in mesh.json"))
        var found: [Certificate] = []
        ERR_clear_error()
        // Bounded: a certificate file with more than 1,000 certificates is not one a mesh uses.
        while found.count < 1000, let certificate = PEM_read_bio_X509(bio.pointer, nil, nil, nil) {
            found.append(Certificate(owning: certificate))
        }
        ERR_clear_error()  // the read that ends the loop queues "no start line"
        guard !found.isEmpty else {
            throw PKIError("\(path): no PEM \(what) ('-----BEGIN CERTIFICATE-----') in this file — check the path in mesh.json")
        }
        return found
    }

    /// Every PEM CRL in the file, in order; at least one.
    static func revocationLists(in path: String) throws -> [RevocationList] {
        let bio = try PKIMemoryBIO(PKIFile.read(path, missingHint: "check tls.crl in mesh.json"))
        var found: [RevocationList] = []
        ERR_clear_error()
        while found.count < 1000, let crl = PEM_read_bio_X509_CRL(bio.pointer, nil, nil, nil) {
            found.append(RevocationList(owning: crl))
        }
        ERR_clear_error()
        guard !found.isEmpty else {
            throw PKIError("\(path): no PEM CRL ('-----BEGIN X509 CRL-----') in this file — check tls.crl in mesh.json")
        }
        return found
    }
}
