import COpenSSL
import Foundation
import MeshConfig
import NIOCore

/// The ex_data slot where each `SSL` keeps a pointer back to its `TLSConnection`, so the C callbacks
/// registered on the shared `SSL_CTX` find the per-connection policy and record their verdicts.
let tlsConnectionExDataIndex: Int32 = tm_SSL_get_ex_new_index()

/// One OpenSSL `SSL` object driven through a `TLSByteBufferBIO`: bytes from the network are handed
/// to it as they come, ciphertext OpenSSL produces is taken from it as one ByteBuffer. Owned by one
/// `OpenSSLHandler` and used only on its event loop.
final class TLSConnection {
    /// TLS 1.3's largest plaintext record; reads reserve this much room, writes are coalesced to it.
    static let maxRecordPlaintext = 16_384

    enum HandshakeStep {
        case wantMore
        case complete
        case failed(TLSHandshakeError)
    }

    enum ReadStep {
        /// Everything readable was decrypted; more bytes are needed for the next record.
        case drained
        /// The peer sent close_notify.
        case closeNotify
        case failed([TLSQueuedError])
    }

    enum ShutdownStep {
        /// Our close_notify is queued; the peer's has not arrived yet.
        case sent
        /// Both close_notify alerts have been exchanged.
        case complete
        case failed([TLSQueuedError])
    }

    let ssl: OpaquePointer
    private let transport: TLSByteBufferBIO
    /// Who may be on the other end; nil for an `.anyClient` context, which verifies no certificate.
    let policy: PeerPolicy?
    let role: TLSContext.Role
    /// Server only: a ClientHello without ALPN is refused (see `TLSCallbacks.clientHello`).
    let requiresALPN: Bool
    /// Keeps the shared `SSL_CTX` alive for as long as this `SSL` uses it; the callbacks read its audience.
    let context: TLSContext

    /// Set by our callbacks when they refuse the peer, so the failure names the precise reason
    /// instead of OpenSSL's generic "certificate verify failed".
    var callbackRejection: TLSHandshakeError?
    /// Set by the verify callback once the leaf certificate passed the chain checks and the policy.
    private(set) var verifiedPeer: (identity: MeshIdentity, notAfter: Date, serial: String)?
    /// Filled by the verify callback as it walks the peer's chain (root first): the certificate
    /// that expires first, and the fingerprints of the CA certificates.
    private(set) var peerChainValidity: CertificateValidity?
    private(set) var peerAuthorities: Set<String> = []
    /// Client only: the server sent a session ticket, which it does only after accepting our
    /// certificate (TLS 1.3 lets a client finish before the server has verified it).
    var serverSentTicket = false

    init(context: TLSContext, policy: PeerPolicy?, requiresALPN: Bool) {
        guard let ssl = SSL_new(context.ctx) else { fatalError("OpenSSL could not allocate a connection (out of memory)") }
        let transport = TLSByteBufferBIO(allocator: ByteBufferAllocator())
        SSL_set_bio(ssl, transport.bio, transport.bio)  // one BIO both ways; the SSL now owns it
        self.ssl = ssl
        self.transport = transport
        self.policy = policy
        self.role = context.role
        self.requiresALPN = requiresALPN
        self.context = context
        switch context.role {
        case .server: SSL_set_accept_state(ssl)
        case .client: SSL_set_connect_state(ssl)
        }
        SSL_set_ex_data(ssl, tlsConnectionExDataIndex, Unmanaged.passUnretained(self).toOpaque())
    }

    deinit {
        SSL_free(ssl)
    }

    /// The connection an `SSL` belongs to, for the C callbacks.
    static func from(ssl: OpaquePointer?) -> TLSConnection? {
        guard let ssl, let raw = SSL_get_ex_data(ssl, tlsConnectionExDataIndex) else { return nil }
        return Unmanaged<TLSConnection>.fromOpaque(raw).takeUnretainedValue()
    }

    // MARK: Bytes in and out

    /// Hands network bytes to OpenSSL (kept, not copied, until OpenSSL reads them).
    func feed(_ buffer: ByteBuffer) {
        transport.receive(buffer)
    }

    /// Ciphertext waiting to go to the network.
    var pendingCiphertext: Int { transport.pendingCiphertext }

    /// All ciphertext produced so far, as one buffer for the channel.
    func takeCiphertext() -> ByteBuffer? {
        transport.takeCiphertext()
    }

    // MARK: OpenSSL operations

    func handshake() -> HandshakeStep {
        ERR_clear_error()
        let rc = SSL_do_handshake(ssl)
        if rc == 1 { return .complete }
        switch SSL_get_error(ssl, rc) {
        case SSL_ERROR_WANT_READ, SSL_ERROR_WANT_WRITE:
            return .wantMore
        default:
            return .failed(
                TLSHandshakeError.classify(queued: TLSErrorQueue.drain(), verifyRejection: callbackRejection)
            )
        }
    }

    /// Decrypts every complete record into `plaintext`, one `SSL_read` per record straight into the
    /// buffer's writable bytes.
    func readPlaintext(into plaintext: inout ByteBuffer) -> ReadStep {
        while true {
            var result: Int32 = 0
            ERR_clear_error()
            plaintext.writeWithUnsafeMutableBytes(minimumWritableBytes: Self.maxRecordPlaintext) { space in
                result = SSL_read(ssl, space.baseAddress, Int32(min(space.count, Int(Int32.max))))
                return Int(max(0, result))
            }
            if result > 0 {
                // Nothing left to decrypt, here or inside OpenSSL: another SSL_read would only say
                // "want read" (an OpenSSL call, an error-queue clear and SSL_get_error per record).
                if !transport.hasInbound && SSL_has_pending(ssl) == 0 { return .drained }
                continue
            }
            switch SSL_get_error(ssl, result) {
            case SSL_ERROR_WANT_READ, SSL_ERROR_WANT_WRITE:
                return .drained
            case SSL_ERROR_ZERO_RETURN:
                return .closeNotify
            default:
                return .failed(TLSErrorQueue.drain())
            }
        }
    }

    /// Encrypts all of `bytes`. Without SSL_MODE_ENABLE_PARTIAL_WRITE and with a BIO that never
    /// pushes back, `SSL_write` either takes everything (split into records) or fails.
    func write(_ bytes: UnsafeRawBufferPointer) -> [TLSQueuedError]? {
        guard bytes.count > 0 else { return nil }
        // Each TLS 1.3 record adds a 5-byte header, the content type byte and a 16-byte tag.
        let records = (bytes.count + Self.maxRecordPlaintext - 1) / Self.maxRecordPlaintext
        transport.reserveOutbound(bytes.count + records * 22)
        ERR_clear_error()
        let written = SSL_write(ssl, bytes.baseAddress, Int32(bytes.count))
        if written == Int32(bytes.count) { return nil }
        let queued = TLSErrorQueue.drain()
        return queued.isEmpty ? [TLSQueuedError(library: 0, reason: 0, text: "SSL_write wrote \(written) of \(bytes.count) bytes")] : queued
    }

    func shutdown() -> ShutdownStep {
        ERR_clear_error()
        let rc = SSL_shutdown(ssl)
        if rc == 1 { return .complete }
        if rc == 0 { return .sent }
        switch SSL_get_error(ssl, rc) {
        case SSL_ERROR_WANT_READ, SSL_ERROR_WANT_WRITE:
            return .sent
        default:
            return .failed(TLSErrorQueue.drain())
        }
    }

    /// The ALPN protocol the handshake settled on.
    var alpn: String? {
        var name: UnsafePointer<UInt8>?
        var length: UInt32 = 0
        SSL_get0_alpn_selected(ssl, &name, &length)
        guard let name, length > 0 else { return nil }
        return String(decoding: UnsafeBufferPointer(start: name, count: Int(length)), as: UTF8.self)
    }

    // MARK: Callback bodies (called from the C callbacks in TLSCallbacks.swift)

    /// Chain verification and the identity check. OpenSSL calls this once per certificate, root
    /// first; `preverifyOK` is its own verdict (chain, dates, CRL). At depth 0 we add the URI SAN check
    /// so a wrong peer fails inside the handshake, with a bad_certificate alert.
    func verify(preverifyOK: Bool, store: OpaquePointer) -> Bool {
        let depth = X509_STORE_CTX_get_error_depth(store)
        guard let cert = X509_STORE_CTX_get_current_cert(store) else {
            callbackRejection = callbackRejection ?? TLSHandshakeError(.noCertificate, "peer presented no certificate")
            return false
        }
        if !preverifyOK {
            if callbackRejection == nil {
                callbackRejection = TLSHandshakeError.fromVerifyError(
                    X509_STORE_CTX_get_error(store),
                    depth: depth,
                    subject: X509Fields.subjectText(cert),
                    notAfter: X509Fields.text(X509Fields.notAfter(cert)),
                    notBefore: X509Fields.text(X509Fields.notBefore(cert))
                )
            }
            return false
        }
        self.peerChainValidity = X509Fields.validity(cert).earlier(self.peerChainValidity)
        guard depth == 0 else {
            self.peerAuthorities.insert(X509Fields.fingerprint(cert))
            return true
        }
        let verdict = X509Fields.meshIdentity(cert).flatMap { identity -> Result<MeshIdentity, TLSHandshakeError> in
            guard let policy else { return .failure(TLSHandshakeError(.other, "no peer policy to check \(identity.uri) against")) }
            if let rejection = policy.rejection(of: identity) { return .failure(rejection) }
            return .success(identity)
        }
        switch verdict {
        case .success(let identity):
            verifiedPeer = (identity, X509Fields.notAfter(cert) ?? .distantPast, PKIOpenSSLValues.hex(X509_get0_serialNumber(cert)))
            return true
        case .failure(let rejection):
            callbackRejection = callbackRejection ?? rejection
            // CERT_REJECTED makes OpenSSL send "bad certificate", which the peer reports as peerRejected.
            X509_STORE_CTX_set_error(store, X509_V_ERR_CERT_REJECTED)
            return false
        }
    }
}
