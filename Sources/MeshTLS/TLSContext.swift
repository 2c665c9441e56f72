import COpenSSL
import Foundation
import MeshConfig

/// One OpenSSL SSL_CTX per role and audience, shared by every connection it serves.
///
/// Mesh peers (`init(role:files:)`): fixed policy, no knobs: TLS 1.3 only, ALPN "h2" required, peer
/// certificates required on both sides and verified against `files.ca` (and `files.crl` when set), no
/// session resumption.
///
/// Any client (`init(anyClientCertificate:...)`), server side only: for clients that are not mesh nodes,
/// such as PostgreSQL clients at a balancer with its own `tls` block. It presents a certificate and asks
/// for none: those clients authenticate to PostgreSQL itself, end to end.
public final class TLSContext: @unchecked Sendable {
    // @unchecked: the SSL_CTX is configured once in init and afterwards only read by SSL_new,
    // which OpenSSL documents as thread-safe.

    public enum Role: Sendable { case server, client }

    /// Who is on the other end, which decides what the handshake checks.
    public enum Audience: Sendable, Equatable {
        /// Mesh nodes: mutual certificates verified against the mesh CA, ALPN "h2".
        case meshPeers
        /// Any client, asked for no certificate. `alpn` is selected when the client offers it; a client
        /// that offers only other protocols is refused, as PostgreSQL 17 does for "postgresql".
        case anyClient(alpn: String)
    }

    public let role: Role
    public let audience: Audience
    /// The mesh TLS files; nil for an `.anyClient` context, which reads only a certificate and key.
    public let files: TLSFiles?
    /// This node's own certificate expiry.
    public let certificateNotAfter: Date
    /// From our own certificate's URI SAN; nil when it has no valid `spiffe://<mesh>/node/<name>`.
    public let localIdentity: MeshIdentity?
    /// What this context authenticates tunnels with (for an `.anyClient` context: no authorities).
    public let credentials: LocalCredentials

    let ctx: OpaquePointer

    /// AES-128-GCM first: as safe as AES-256 here and measurably faster for bulk tunnel traffic.
    static let cipherSuites = "TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256"
    /// TLS 1.2 suites an `.anyClient` context accepts: forward secret and AEAD only.
    static let tls12Ciphers = "ECDHE+AESGCM:ECDHE+CHACHA20"

    /// A certificate and key to present, with the words errors use for them.
    struct Identity {
        var cert: String
        var key: String
        /// The config block naming them, e.g. "tls" or "balancers.pg.tls".
        var setting: String
        /// Whose certificate it is, e.g. "this node" or "the balancer".
        var owner: String
    }

    public init(role: Role, files: TLSFiles) throws(TLSSetupError) {
        for (path, what) in [
            (files.ca, "CA certificate (tls.ca)"), (files.cert, "certificate (tls.cert)"),
            (files.key, "private key (tls.key)"),
        ] + (files.crl.map { [($0, "CRL (tls.crl)")] } ?? []) {
            try Self.requireReadable(path, what)
        }
        guard let ctx = SSL_CTX_new(TLS_method()) else {
            throw TLSSetupError(file: files.cert, message: "OpenSSL could not create a TLS context: \(Self.queued())")
        }
        do {
            let own = try Self.configure(ctx, role: role, files: files)
            self.ctx = ctx
            self.role = role
            self.audience = .meshPeers
            self.files = files
            self.certificateNotAfter = X509Fields.notAfter(own) ?? .distantPast
            self.localIdentity = try? X509Fields.meshIdentity(own).get()
            self.credentials = LocalCredentials.read(ctx: ctx, own: own)
        } catch {
            SSL_CTX_free(ctx)
            throw error
        }
    }

    /// A server context for clients outside the mesh: presents `certificate` (optionally followed by
    /// intermediates) and `key`, requests no client certificate, takes TLS 1.3 or 1.2 (PostgreSQL's own
    /// default floor; 1.2 only with forward-secret AEAD suites), never resumes sessions. `setting` names
    /// the config block in errors, e.g. "balancers.pg.tls".
    public init(
        anyClientCertificate certificate: String,
        key: String,
        alpn: String,
        setting: String
    )
        throws(TLSSetupError)
    {
        precondition(!alpn.isEmpty && alpn.utf8.count < 256, "an ALPN protocol name is 1 to 255 bytes")
        try Self.requireReadable(certificate, "certificate (\(setting).cert)")
        try Self.requireReadable(key, "private key (\(setting).key)")
        guard let ctx = SSL_CTX_new(TLS_method()) else {
            throw TLSSetupError(file: certificate, message: "OpenSSL could not create a TLS context: \(Self.queued())")
        }
        do {
            let identity = Identity(cert: certificate, key: key, setting: setting, owner: "the server")
            let own = try Self.configureAnyClient(ctx, identity: identity)
            self.ctx = ctx
            self.role = .server
            self.audience = .anyClient(alpn: alpn)
            self.files = nil
            self.certificateNotAfter = X509Fields.notAfter(own) ?? .distantPast
            self.localIdentity = try? X509Fields.meshIdentity(own).get()
            self.credentials = LocalCredentials.read(ctx: ctx, own: own)
        } catch {
            SSL_CTX_free(ctx)
            throw error
        }
    }

    deinit {
        SSL_CTX_free(ctx)
    }

    /// The ALPN protocol this context's server selects: "h2" between mesh peers.
    var serverALPN: String {
        switch audience {
        case .meshPeers: "h2"
        case .anyClient(let alpn): alpn
        }
    }

    /// Applies the whole policy to `ctx`; returns our own leaf certificate (borrowed from the ctx).
    private static func configure(
        _ ctx: OpaquePointer,
        role: Role,
        files: TLSFiles
    ) throws(TLSSetupError)
        -> OpaquePointer
    {
        ERR_clear_error()
        guard tm_SSL_CTX_set_min_proto_version(ctx, TLS1_3_VERSION) == 1,
            tm_SSL_CTX_set_max_proto_version(ctx, TLS1_3_VERSION) == 1,
            SSL_CTX_set_ciphersuites(ctx, cipherSuites) == 1
        else {
            throw TLSSetupError(file: files.cert, message: "this OpenSSL does not support TLS 1.3: \(queued())")
        }
        _ = SSL_CTX_set_options(ctx, tm_SSL_OP_NO_COMPRESSION() | tm_SSL_OP_NO_RENEGOTIATION())
        // Let OpenSSL pull whole bursts out of the read BIO rather than one record header at a time.
        _ = tm_SSL_CTX_set_read_ahead(ctx, 1)
        SSL_CTX_set_default_passwd_cb(ctx, TLSCallbacks.noPassphrase)

        try loadTrust(ctx, files: files)
        let own = try loadIdentity(
            ctx,
            Identity(cert: files.cert, key: files.key, setting: "tls", owner: "this node")
        )

        SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, TLSCallbacks.verify)
        SSL_CTX_set_verify_depth(ctx, 8)

        switch role {
        case .server:
            SSL_CTX_set_client_hello_cb(ctx, TLSCallbacks.clientHello, nil)
            SSL_CTX_set_alpn_select_cb(ctx, TLSCallbacks.selectALPN, nil)
            // No resumption: every connection re-checks the chain, dates and CRL. With NO_TICKET and
            // the cache off, TLS 1.3 tickets are stateful ones nobody stores, so they can never be
            // redeemed. We still send one: it is how our client learns we accepted its certificate.
            _ = SSL_CTX_set_options(ctx, tm_SSL_OP_NO_TICKET())
            _ = tm_SSL_CTX_set_session_cache_mode(ctx, Int(SSL_SESS_CACHE_OFF))
            _ = SSL_CTX_set_num_tickets(ctx, 1)
        case .client:
            let h2: [UInt8] = [2, UInt8(ascii: "h"), UInt8(ascii: "2")]
            guard SSL_CTX_set_alpn_protos(ctx, h2, UInt32(h2.count)) == 0 else {
                throw TLSSetupError(file: files.cert, message: "OpenSSL refused the ALPN list: \(queued())")
            }
            // Only to be told when the server's ticket arrives; nothing is stored or reused.
            _ = tm_SSL_CTX_set_session_cache_mode(ctx, Int(SSL_SESS_CACHE_CLIENT | SSL_SESS_CACHE_NO_INTERNAL_STORE))
            SSL_CTX_sess_set_new_cb(ctx, TLSCallbacks.newSession)
        }
        return own
    }

    /// The policy of an `.anyClient` server context; returns our own leaf certificate (borrowed from the ctx).
    private static func configureAnyClient(
        _ ctx: OpaquePointer,
        identity: Identity
    ) throws(TLSSetupError)
        -> OpaquePointer
    {
        ERR_clear_error()
        guard tm_SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION) == 1,
            tm_SSL_CTX_set_max_proto_version(ctx, TLS1_3_VERSION) == 1,
            SSL_CTX_set_ciphersuites(ctx, cipherSuites) == 1, SSL_CTX_set_cipher_list(ctx, tls12Ciphers) == 1
        else {
            throw TLSSetupError(file: identity.cert, message: "this OpenSSL does not support TLS 1.2 and 1.3: \(queued())")
        }
        _ = SSL_CTX_set_options(
            ctx,
            tm_SSL_OP_NO_COMPRESSION() | tm_SSL_OP_NO_RENEGOTIATION() | tm_SSL_OP_NO_TICKET()
        )
        _ = tm_SSL_CTX_set_read_ahead(ctx, 1)
        SSL_CTX_set_default_passwd_cb(ctx, TLSCallbacks.noPassphrase)
        let own = try loadIdentity(ctx, identity)
        // No client certificate is requested: the client proves who it is to PostgreSQL, not to us.
        SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, nil)
        SSL_CTX_set_client_hello_cb(ctx, TLSCallbacks.clientHello, nil)
        SSL_CTX_set_alpn_select_cb(ctx, TLSCallbacks.selectALPN, nil)
        // No resumption, as between mesh peers: every connection does a full handshake.
        _ = tm_SSL_CTX_set_session_cache_mode(ctx, Int(SSL_SESS_CACHE_OFF))
        _ = SSL_CTX_set_num_tickets(ctx, 0)
        return own
    }

    /// The CA file, and the CRL when configured (a missing or unreadable CRL is an error, never skipped).
    private static func loadTrust(_ ctx: OpaquePointer, files: TLSFiles) throws(TLSSetupError) {
        let authorities = try readCertificates(files.ca, what: "CA certificate (tls.ca)")
        defer { for authority in authorities { X509_free(authority) } }
        guard let store = SSL_CTX_get_cert_store(ctx) else {
            throw TLSSetupError(file: files.ca, message: "OpenSSL has no certificate store: \(queued())")
        }
        for authority in authorities {
            ERR_clear_error()
            guard X509_STORE_add_cert(store, authority) == 1 else {
                throw TLSSetupError(file: files.ca, message: "OpenSSL refused a CA certificate: \(queued())")
            }
        }
        guard let crlPath = files.crl else { return }

        let crls = try readCRLs(crlPath)
        defer { for crl in crls { X509_CRL_free(crl) } }
        for crl in crls {
            // By signature, not by name alone: during a CA rotation the bundle holds two CAs of one
            // mesh, and `meshctl pki init` names both "tunnelmesh <mesh> CA".
            let signed = authorities.contains { authority in
                X509_NAME_cmp(X509_CRL_get_issuer(crl), X509_get_subject_name(authority)) == 0
                    && X509_CRL_verify(crl, X509_get0_pubkey(authority)) == 1
            }
            ERR_clear_error()
            guard signed else {
                throw TLSSetupError(
                    file: crlPath,
                    message: "this CRL is not signed by the CA in \(files.ca); regenerate it with that CA "
                        + "(e.g. `meshctl pki revoke`) or point tls.crl at the right file"
                )
            }
            if let next = X509Fields.date(X509_CRL_get0_nextUpdate(crl)), next < Date() {
                throw TLSSetupError(
                    file: crlPath,
                    message: "this CRL expired on \(X509Fields.text(next)) (nextUpdate); with an expired CRL every "
                        + "peer would be refused. Publish a fresh CRL from the CA"
                )
            }
            ERR_clear_error()
            guard X509_STORE_add_crl(store, crl) == 1 else {
                throw TLSSetupError(file: crlPath, message: "OpenSSL refused the CRL: \(queued())")
            }
        }
        ERR_clear_error()
        guard X509_STORE_set_flags(store, UInt(X509_V_FLAG_CRL_CHECK)) == 1 else {
            throw TLSSetupError(file: crlPath, message: "OpenSSL could not enable CRL checking: \(queued())")
        }
    }

    /// Our certificate chain and key; the key must match the certificate.
    private static func loadIdentity(_ ctx: OpaquePointer, _ identity: Identity) throws(TLSSetupError) -> OpaquePointer {
        ERR_clear_error()
        guard SSL_CTX_use_certificate_chain_file(ctx, identity.cert) == 1, let own = SSL_CTX_get0_certificate(ctx) else {
            throw TLSSetupError(
                file: identity.cert,
                message: "not a PEM certificate (\(queued())); \(identity.setting).cert must hold \(identity.owner)'s "
                    + "certificate, optionally followed by intermediates"
            )
        }
        let keyText = (try? String(contentsOfFile: identity.key, encoding: .utf8)) ?? ""
        if keyText.contains("ENCRYPTED") {
            throw TLSSetupError(
                file: identity.key,
                message: "the private key is encrypted with a passphrase; meshd runs unattended and needs an "
                    + "unencrypted key (e.g. `openssl pkey -in KEY -out KEY.plain`), kept readable only by its user"
            )
        }
        ERR_clear_error()
        guard SSL_CTX_use_PrivateKey_file(ctx, identity.key, SSL_FILETYPE_PEM) == 1 else {
            let errors = TLSErrorQueue.drain()
            if errors.contains(where: { $0.library == ERR_LIB_X509 && $0.reason == X509_R_KEY_VALUES_MISMATCH }) {
                throw mismatch(identity)
            }
            throw TLSSetupError(
                file: identity.key,
                message: "not a PEM private key (\(TLSErrorQueue.describe(errors))); \(identity.setting).key must hold "
                    + "the key of \(identity.cert)"
            )
        }
        ERR_clear_error()
        guard SSL_CTX_check_private_key(ctx) == 1 else { throw mismatch(identity) }
        return own
    }

    private static func mismatch(_ identity: Identity) -> TLSSetupError {
        TLSSetupError(
            file: "\(identity.key) and \(identity.cert)",
            message: "the private key does not match the certificate; pair each certificate with the key it was "
                + "issued for (compare `openssl pkey -in KEY -pubout` with `openssl x509 -in CERT -noout -pubkey`)"
        )
    }

    private static func requireReadable(_ path: String, _ what: String) throws(TLSSetupError) {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
            throw TLSSetupError(file: path, message: "\(what) file does not exist; create it or fix the path in mesh.json")
        }
        guard !isDirectory.boolValue, FileManager.default.isReadableFile(atPath: path) else {
            throw TLSSetupError(
                file: path,
                message: "\(what) is not a readable file; check the path and its permissions"
            )
        }
    }

    private static func readCertificates(_ path: String, what: String) throws(TLSSetupError) -> [OpaquePointer] {
        var certificates: [OpaquePointer] = []
        try readPEM(path) { bio in
            // Bounded: a CA file with more than 1,000 certificates is not one we wrote.
            for _ in 0..<1000 {
                guard let cert = PEM_read_bio_X509(bio, nil, nil, nil) else { break }
                certificates.append(cert)
            }
        }
        guard !certificates.isEmpty else {
            throw TLSSetupError(file: path, message: "no PEM certificate found in this \(what) file; it must hold the mesh CA certificate")
        }
        return certificates
    }

    private static func readCRLs(_ path: String) throws(TLSSetupError) -> [OpaquePointer] {
        var crls: [OpaquePointer] = []
        try readPEM(path) { bio in
            for _ in 0..<1000 {
                guard let crl = PEM_read_bio_X509_CRL(bio, nil, nil, nil) else { break }
                crls.append(crl)
            }
        }
        guard !crls.isEmpty else {
            throw TLSSetupError(
                file: path,
                message: "no PEM CRL (-----BEGIN X509 CRL-----) found; tls.crl must hold the CA's revocation list, "
                    + "or remove tls.crl from mesh.json to run without one"
            )
        }
        return crls
    }

    private static func readPEM(_ path: String, _ body: (OpaquePointer) -> Void) throws(TLSSetupError) {
        ERR_clear_error()
        guard let bio = BIO_new_file(path, "r") else {
            throw TLSSetupError(file: path, message: "cannot open: \(queued())")
        }
        defer { BIO_free(bio) }
        body(bio)
        ERR_clear_error()  // the read that ends the loop queues "no start line"
    }

    private static func queued() -> String { TLSErrorQueue.describe(TLSErrorQueue.drain()) }
}
