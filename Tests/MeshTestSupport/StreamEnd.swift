import Foundation

/// How a client's read side ended.
public enum StreamEnd: Equatable, Sendable, CustomStringConvertible {
    /// A clean FIN after all data.
    case eof
    /// ECONNRESET: the connection was cut.
    case reset
    /// The client's own deadline passed first.
    case timedOut
    /// Any other error.
    case error(String)

    public var description: String {
        switch self {
        case .eof: "EOF"
        case .reset: "reset (ECONNRESET)"
        case .timedOut: "timed out"
        case .error(let text): "error: \(text)"
        }
    }
}
