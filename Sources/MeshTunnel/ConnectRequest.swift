import NIOCore
import NIOHPACK
import NIOHTTP2

/// The HTTP/2 CONNECT request that opens a stream to a service, and its answer. `:authority` is a
/// declared service name, never a host:port: the serving node maps the name to its own target, so
/// the mesh cannot be used as an open proxy.
enum ConnectRequest {
    /// Answers the serving node gives, as HTTP status codes.
    enum Refusal: Int, Error, CustomStringConvertible {
        case badRequest = 400
        case forbidden = 403
        case notFound = 404
        case tooManyStreams = 429
        case unreachable = 502
        case shuttingDown = 503

        var description: String {
            switch self {
            case .badRequest: "bad request"
            case .forbidden: "not allowed to use this service"
            case .notFound: "no such service on this node"
            case .tooManyStreams: "too many streams from this peer"
            case .unreachable: "service target unreachable"
            case .shuttingDown: "node is shutting down"
            }
        }
    }

    static func headers(service: String) -> HPACKHeaders {
        // Exactly these two: adding :scheme/:path makes NIO reject the CONNECT (RFC 9113 8.5).
        [":method": "CONNECT", ":authority": service]
    }

    /// The service a request names, or why it is malformed.
    static func service(from headers: HPACKHeaders) -> Result<String, Refusal> {
        guard headers.first(name: ":method") == "CONNECT",
            let authority = headers.first(name: ":authority"), !authority.isEmpty
        else { return .failure(.badRequest) }
        return .success(authority)
    }

    static func response(status: Int) -> HPACKHeaders {
        [":status": String(status)]
    }
}
