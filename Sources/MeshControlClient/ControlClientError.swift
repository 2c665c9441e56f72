#if canImport(Glibc)
import Glibc
#endif

/// Why a control request failed, in words for the operator, with the exit status meshctl maps it to.
public enum ControlClientError: Error, CustomStringConvertible {
    /// No agent answers on the socket (missing file, refused, closed): exit 3.
    case unreachable(socketPath: String, reason: String, errno: Int32?)
    /// The agent answered 403: this user may not use the socket.
    case refused(socketPath: String, message: String)
    case timedOut(socketPath: String, after: Duration)
    /// The agent answered with an error status and message.
    case api(status: UInt, message: String)
    /// The agent's answer was not the JSON this meshctl expects (a version mismatch, most likely).
    case malformed(socketPath: String, path: String, reason: String)

    public var description: String {
        switch self {
        case .unreachable(let socketPath, let reason, let code) where code == EACCES:
            "cannot connect to meshd's control socket \(socketPath): \(reason) — run as root, as meshd's user, or as a member of the socket's group"
        case .unreachable(let socketPath, let reason, _):
            "cannot reach meshd at its control socket \(socketPath): \(reason) — is meshd running? Check with 'systemctl status meshd', or pass --control PATH / --config PATH --node NAME"
        case .refused(let socketPath, let message):
            "meshd refused this user on \(socketPath): \(message) — run as root, as meshd's user, or as a member of the socket's group"
        case .timedOut(let socketPath, let after):
            "meshd at \(socketPath) did not answer within \(after) — check 'systemctl status meshd'"
        case .api(_, let message):
            message
        case .malformed(let socketPath, let path, let reason):
            "meshd at \(socketPath) sent an answer to \(path) that this meshctl cannot read (\(reason)) — are meshctl and meshd the same version?"
        }
    }
}
