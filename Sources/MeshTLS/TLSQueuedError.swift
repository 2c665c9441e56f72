import COpenSSL

/// One entry of OpenSSL's thread-local error queue, decoded while it is still on the queue's thread.
struct TLSQueuedError: Sendable, Equatable {
    var library: Int32
    var reason: Int32
    /// OpenSSL's own text, e.g. "error:0A000086:SSL routines::certificate verify failed".
    var text: String

    var isSSL: Bool { library == ERR_LIB_SSL }

    /// The alert a peer sent, when this entry records a received alert (OpenSSL files those as
    /// SSL reasons 1000 + alert number).
    var receivedAlert: Int32? {
        guard isSSL, reason >= SSL_AD_REASON_OFFSET, reason < SSL_AD_REASON_OFFSET + 256 else { return nil }
        return reason - SSL_AD_REASON_OFFSET
    }
}
