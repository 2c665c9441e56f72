import Foundation

/// Why a probe failed outside PostgreSQL's own errors.
enum ProbeError: Error, CustomStringConvertible {
    case passwordFile(String, String)
    case socketName(String)
    case unexpectedAnswer(String)

    var description: String {
        switch self {
        case .passwordFile(let path, let reason): "cannot read password_file \(path): \(reason)"
        case .socketName(let path):
            "libpq reaches PostgreSQL's Unix socket by directory and port, so the socket must be named .s.PGSQL.<port>, not \((path as NSString).lastPathComponent)"
        case .unexpectedAnswer(let what): "unexpected probe answer: \(what)"
        }
    }
}
