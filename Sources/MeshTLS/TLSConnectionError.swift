/// Errors on an established TLS connection.
public enum TLSConnectionError: Error, CustomStringConvertible, Sendable {
    /// The TCP connection ended without the peer's close_notify: the stream may be truncated.
    case uncleanShutdown
    /// A record failed to decrypt or parse; the connection is closed.
    case recordError(String)
    /// We sent close_notify and the peer did not answer in time; the connection was closed anyway.
    case closeNotifyTimeout

    public var description: String {
        switch self {
        case .uncleanShutdown: return "TLS connection ended without close_notify (possible truncation)"
        case .recordError(let detail): return "bad TLS record: \(detail)"
        case .closeNotifyTimeout: return "peer did not answer close_notify in time; closed anyway"
        }
    }
}
