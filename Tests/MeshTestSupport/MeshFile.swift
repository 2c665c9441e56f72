import Foundation

/// mesh.json as a Swift value, written by the tests exactly as an operator would write the file
/// (DESIGN.md's schema; keys in snake_case, optional blocks omitted when nil).
struct MeshFile: Encodable {
    struct TLS: Encodable {
        var ca: String
        var cert: String
        var key: String
        var crl: String?
    }

    struct Tunnel: Encodable {
        var pingInterval: String?
        var deadAfter: Int?
        var backoffMax: String?
        var shutdownGrace: String?
        var handshakeTimeout: String?

        enum CodingKeys: String, CodingKey {
            case pingInterval = "ping_interval", deadAfter = "dead_after", backoffMax = "backoff_max"
            case shutdownGrace = "shutdown_grace", handshakeTimeout = "handshake_timeout"
        }
    }

    struct Node: Encodable {
        var address: String
        var control: String
    }

    struct Service: Encodable {
        var on: [String: String]
        var allow: [String]
    }

    struct Forward: Encodable {
        var on: String
        var listen: String
        var to: String
    }

    var mesh: String
    var tls: TLS
    var tunnel: Tunnel?
    var nodes: [String: Node]
    var services: [String: Service]
    var forwards: [Forward]

    func write(to url: URL) throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        try encoder.encode(self).write(to: url)
    }
}
