import COpenSSL

/// Reads and empties OpenSSL's error queue. Every OpenSSL call that may queue errors is preceded by
/// `ERR_clear_error()`, so what this returns belongs to the call just made.
enum TLSErrorQueue {
    static func drain() -> [TLSQueuedError] {
        var entries: [TLSQueuedError] = []
        // Bounded: OpenSSL's queue holds at most 16 entries.
        for _ in 0..<32 {
            let code = ERR_get_error()
            if code == 0 { break }
            var text = [CChar](repeating: 0, count: 256)
            ERR_error_string_n(code, &text, text.count)
            entries.append(
                TLSQueuedError(
                    library: tm_ERR_GET_LIB(code),
                    reason: tm_ERR_GET_REASON(code),
                    text: String(decoding: text.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
                )
            )
        }
        return entries
    }

    /// The error texts joined for a log line; "no OpenSSL error queued" when there are none.
    static func describe(_ entries: [TLSQueuedError]) -> String {
        entries.isEmpty ? "no OpenSSL error queued" : entries.map(\.text).joined(separator: "; ")
    }
}

/// The human name of a TLS alert number, as OpenSSL spells it ("bad certificate").
func tlsAlertName(_ alert: Int32) -> String {
    // SSL_alert_desc_string_long takes the two-byte alert (level << 8 | description).
    String(cString: SSL_alert_desc_string_long((2 << 8) | alert))
}

/// OpenSSL's text for an X509 verification error ("certificate has expired").
func x509VerifyErrorText(_ code: Int32) -> String {
    String(cString: X509_verify_cert_error_string(Int(code)))
}
