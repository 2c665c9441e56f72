import NIOCore

/// Why the first packet on a front-door connection was rejected.
public enum StartupPacketError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The length prefix is outside what PostgreSQL accepts (8...MAX_STARTUP_PACKET_LENGTH).
    case lengthOutOfRange(declared: Int64)
    /// SSLRequest, GSSENCRequest or CancelRequest with a length its layout cannot have.
    case requestLength(request: String, length: Int, expected: String)
    /// A StartupMessage whose major version is not 3.
    case unsupportedProtocol(ProtocolVersion)
    /// A StartupMessage whose parameter list is not `name\0value\0...\0`.
    case malformedStartup(String)

    public var description: String {
        switch self {
        case .lengthOutOfRange(let declared):
            "invalid length of startup packet: \(declared) bytes declared, PostgreSQL allows 8 to "
                + "\(PostgresProtocol.maxStartupPacketLength) (is this a PostgreSQL client?)"
        case .requestLength(let request, let length, let expected):
            "invalid length of \(request): \(length) bytes, expected \(expected)"
        case .unsupportedProtocol(let version):
            "unsupported frontend protocol \(version): the balancer supports 3.0 and later 3.x"
        case .malformedStartup(let problem):
            "invalid startup packet layout: \(problem)"
        }
    }

    /// The ErrorResponse PostgreSQL itself would send for this problem.
    public var errorResponse: ErrorResponse {
        switch self {
        case .unsupportedProtocol:
            ErrorResponse(code: .featureNotSupported, message: "tunnelmesh: \(self)")
        default:
            ErrorResponse(code: .protocolViolation, message: "tunnelmesh: \(self)")
        }
    }
}
