import COpenSSL
import Foundation

/// What this node authenticates its tunnels with, as one `TLSContext` loaded it: its certificate,
/// the CA bundle it checks peers against, and the earliest expiry on its own side. A reload whose
/// credentials differ re-authenticates every tunnel (README, "Certificate rotation").
public struct LocalCredentials: Sendable, Equatable {
    /// SHA-256 fingerprint of this node's certificate.
    public var certificateFingerprint: String
    /// SHA-256 fingerprints of every certificate in the CA bundle (`tls.ca`).
    public var authorities: Set<String>
    /// The certificate of this node's own chain (its leaf, intermediates from its certificate file
    /// and the CA certificates of the bundle they chain to) that expires first.
    public var chainValidity: CertificateValidity

    public init(certificateFingerprint: String, authorities: Set<String>, chainValidity: CertificateValidity) {
        self.certificateFingerprint = certificateFingerprint
        self.authorities = authorities
        self.chainValidity = chainValidity
    }

    /// Reads them from a configured `SSL_CTX`: `own` is its leaf, the store holds the CA bundle.
    static func read(ctx: OpaquePointer, own: OpaquePointer) -> LocalCredentials {
        var candidates: [OpaquePointer] = []
        var extra: OpaquePointer?
        // SSL_CTX_get0_chain_certs is a macro over SSL_CTX_ctrl.
        if SSL_CTX_ctrl(ctx, SSL_CTRL_GET_CHAIN_CERTS, 0, &extra) == 1, let extra {
            for index in 0..<OPENSSL_sk_num(extra) {
                if let cert = OPENSSL_sk_value(extra, index) { candidates.append(OpaquePointer(cert)) }
            }
        }
        var authorities: Set<String> = []
        if let store = SSL_CTX_get_cert_store(ctx), let objects = X509_STORE_get0_objects(store) {
            for index in 0..<OPENSSL_sk_num(objects) {
                guard let object = OPENSSL_sk_value(objects, index),
                    let cert = X509_OBJECT_get0_X509(OpaquePointer(object))
                else { continue }
                authorities.insert(X509Fields.fingerprint(cert))
                candidates.append(cert)
            }
        }
        // Walk up from the leaf through whatever issued each certificate; bounded like the
        // handshake's verify depth.
        var validity = X509Fields.validity(own)
        var current = own
        for _ in 0..<8 {
            guard X509_check_issued(current, current) != X509_V_OK,
                let issuer = candidates.first(where: { X509_check_issued($0, current) == X509_V_OK })
            else { break }
            validity = X509Fields.validity(issuer).earlier(validity)
            current = issuer
        }
        ERR_clear_error()
        return LocalCredentials(
            certificateFingerprint: X509Fields.fingerprint(own),
            authorities: authorities,
            chainValidity: validity
        )
    }
}
