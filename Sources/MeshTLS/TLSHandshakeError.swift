import COpenSSL

/// A failed handshake: the reason label plus a sentence naming what was seen.
public struct TLSHandshakeError: Error, CustomStringConvertible, Sendable {
    public var reason: HandshakeFailureReason
    public var detail: String

    public init(reason: HandshakeFailureReason, detail: String) {
        self.reason = reason
        self.detail = detail
    }

    init(_ reason: HandshakeFailureReason, _ detail: String) {
        self.init(reason: reason, detail: detail)
    }

    public var description: String { "TLS handshake failed (\(reason.rawValue)): \(detail)" }
}

extension TLSHandshakeError {
    /// Alerts a peer sends when it refuses the certificate we presented.
    private static let certificateAlerts: Set<Int32> = [
        SSL_AD_BAD_CERTIFICATE, SSL_AD_UNSUPPORTED_CERTIFICATE, SSL_AD_CERTIFICATE_REVOKED,
        SSL_AD_CERTIFICATE_EXPIRED, SSL_AD_CERTIFICATE_UNKNOWN, SSL_AD_UNKNOWN_CA, SSL_AD_ACCESS_DENIED,
        SSL_AD_CERTIFICATE_REQUIRED,
    ]

    /// Record-layer complaints OpenSSL makes about bytes that are not a TLS record.
    private static let notTLSReasons: Set<Int32> = [
        SSL_R_WRONG_VERSION_NUMBER, SSL_R_HTTP_REQUEST, SSL_R_HTTPS_PROXY_REQUEST, SSL_R_PACKET_LENGTH_TOO_LONG,
        SSL_R_UNKNOWN_PROTOCOL, SSL_R_RECORD_LENGTH_MISMATCH, SSL_R_ENCRYPTED_LENGTH_TOO_LONG,
    ]

    private static let versionReasons: Set<Int32> = [
        SSL_R_UNSUPPORTED_PROTOCOL, SSL_R_VERSION_TOO_LOW, SSL_R_WRONG_SSL_VERSION, SSL_R_NO_PROTOCOLS_AVAILABLE,
        SSL_R_UNSUPPORTED_SSL_VERSION,
    ]

    /// Names a failed `SSL_do_handshake` (or a failed first read on a client still waiting for the
    /// server to accept its certificate) from what our verify callback recorded and OpenSSL queued.
    static func classify(queued: [TLSQueuedError], verifyRejection: TLSHandshakeError?) -> TLSHandshakeError {
        if let verifyRejection { return verifyRejection }
        let openssl = TLSErrorQueue.describe(queued)
        for entry in queued {
            guard let alert = entry.receivedAlert else { continue }
            let name = tlsAlertName(alert)
            if alert == SSL_AD_PROTOCOL_VERSION {
                return TLSHandshakeError(.protocolVersion, "peer refused TLS 1.3: it sent alert \"\(name)\"")
            }
            if certificateAlerts.contains(alert) {
                return TLSHandshakeError(.peerRejected, "peer rejected our certificate: alert \"\(name)\"")
            }
            return TLSHandshakeError(.other, "peer sent alert \"\(name)\"")
        }
        for entry in queued where entry.isSSL {
            if entry.reason == SSL_R_PEER_DID_NOT_RETURN_A_CERTIFICATE {
                return TLSHandshakeError(.noCertificate, "peer sent no certificate; every mesh peer must present one")
            }
            if versionReasons.contains(entry.reason) {
                return TLSHandshakeError(.protocolVersion, "peer does not speak TLS 1.3 (\(openssl))")
            }
            if notTLSReasons.contains(entry.reason) {
                return TLSHandshakeError(.notTLS, "peer bytes are not TLS records (\(openssl))")
            }
            if entry.reason == SSL_R_NO_APPLICATION_PROTOCOL {
                return TLSHandshakeError(.other, "no common application protocol: the mesh speaks only ALPN \"h2\"")
            }
        }
        return TLSHandshakeError(.other, openssl)
    }

    /// Names an X509 chain-verification failure reported to the verify callback.
    static func fromVerifyError(
        _ code: Int32,
        depth: Int32,
        subject: String,
        notAfter: String?,
        notBefore: String?
    )
        -> TLSHandshakeError
    {
        let text = x509VerifyErrorText(code)
        let which = depth == 0 ? "peer certificate \(subject)" : "certificate \(subject) in the peer's chain"
        switch code {
        case X509_V_ERR_CERT_HAS_EXPIRED:
            return TLSHandshakeError(.expired, "\(which) expired on \(notAfter ?? "?")")
        case X509_V_ERR_CERT_NOT_YET_VALID:
            return TLSHandshakeError(.notYetValid, "\(which) is not valid before \(notBefore ?? "?")")
        case X509_V_ERR_CERT_REVOKED:
            return TLSHandshakeError(.revoked, "\(which) is revoked by the CRL")
        case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT, X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY,
            X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT, X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN,
            X509_V_ERR_UNABLE_TO_VERIFY_LEAF_SIGNATURE, X509_V_ERR_CERT_UNTRUSTED, X509_V_ERR_CERT_SIGNATURE_FAILURE,
            X509_V_ERR_INVALID_CA, X509_V_ERR_CERT_REJECTED:
            return TLSHandshakeError(.untrusted, "\(which) does not chain to the mesh CA (\(text))")
        default:
            return TLSHandshakeError(.other, "\(which): \(text)")
        }
    }
}
