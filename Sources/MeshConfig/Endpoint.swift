/// Where something listens or is reached: a TCP `host:port` or a Unix socket `unix:/path`.
public enum Endpoint: Sendable, Hashable, CustomStringConvertible {
    case tcp(host: String, port: Int)
    case unix(path: String)

    /// sockaddr_un holds 108 bytes on Linux (104 on macOS) including the terminating NUL.
    #if os(Linux)
    static let maxUnixPathLength = 107
    #else
    static let maxUnixPathLength = 103
    #endif

    /// Why a text is not an endpoint, so configuration errors can be specific.
    enum Problem: Error, Equatable {
        case malformed
        case portOutOfRange(String)
    }

    /// Parses `127.0.0.1:7443`, `[::1]:7443`, `localhost:80` or `unix:/path`; nil when malformed or the
    /// port is outside 1...65535. A relative unix path is resolved against `directory` when one is given.
    public static func parse(_ text: String, relativeTo directory: String?) -> Endpoint? {
        try? parseExplained(text, relativeTo: directory).get()
    }

    static func parseExplained(_ text: String, relativeTo directory: String?) -> Result<Endpoint, Problem> {
        if text.hasPrefix("unix:") {
            let path = String(text.dropFirst("unix:".count))
            guard !path.isEmpty, !path.contains("\0") else { return .failure(.malformed) }
            return .success(.unix(path: directory.map { FilePaths.absolute(path, against: $0) } ?? path))
        }

        let host: Substring
        let portText: Substring
        if text.hasPrefix("[") {
            // Bracketed IPv6 literal: "[::1]:7443", optionally with a zone ("[fe80::1%eth0]:80").
            guard let close = text.firstIndex(of: "]") else { return .failure(.malformed) }
            host = text[text.index(after: text.startIndex)..<close]
            let rest = text[text.index(after: close)...]
            guard rest.hasPrefix(":"), host.contains(":"), isIPv6Literal(host) || isZoned(host) else {
                return .failure(.malformed)
            }
            portText = rest.dropFirst()
        } else {
            guard let colon = text.lastIndex(of: ":") else { return .failure(.malformed) }
            host = text[..<colon]
            portText = text[text.index(after: colon)...]
            guard !host.isEmpty,
                host.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "." || $0 == "-" || $0 == "_") })
            else { return .failure(.malformed) }
        }

        guard !portText.isEmpty, portText.allSatisfy({ $0.isASCII && $0.isNumber }) else {
            return .failure(.malformed)
        }
        guard portText.count <= 5, let port = Int(portText), (1...65535).contains(port) else {
            return .failure(.portOutOfRange(String(portText)))
        }
        return .success(.tcp(host: String(host), port: port))
    }

    private static func isIPv6Literal(_ host: Substring) -> Bool {
        !host.isEmpty && host.allSatisfy { $0.isASCII && ($0.isHexDigit || $0 == ":" || $0 == ".") }
    }

    /// An IPv6 literal with a zone index: address characters, then '%', then an interface name.
    private static func isZoned(_ host: Substring) -> Bool {
        guard let percent = host.firstIndex(of: "%") else { return false }
        let zone = host[host.index(after: percent)...]
        return isIPv6Literal(host[..<percent]) && !zone.isEmpty
            && zone.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "." || $0 == "-" || $0 == "_") }
    }

    /// The form mesh.json uses: `host:port`, `[v6]:port` or `unix:/path`.
    public var description: String {
        switch self {
        case .tcp(let host, let port): host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)"
        case .unix(let path): "unix:\(path)"
        }
    }

    /// Whether binding both on one node would fail: the same socket, or the same TCP port where one
    /// side is a wildcard address (which claims the port on every interface).
    func collides(with other: Endpoint) -> Bool {
        switch (self, other) {
        case (.unix(let a), .unix(let b)):
            return a == b
        case (.tcp(let hostA, let portA), .tcp(let hostB, let portB)):
            return portA == portB && (hostA == hostB || Self.isWildcard(hostA) || Self.isWildcard(hostB))
        default:
            return false
        }
    }

    private static func isWildcard(_ host: String) -> Bool {
        host == "0.0.0.0" || host == "::"
    }
}
