import Foundation

/// mesh.json as a Swift value, written by the tests exactly as an operator would write the file
/// (DESIGN.md's schema; keys in snake_case, optional blocks omitted when nil).
public struct MeshFile: Encodable {
    public struct TLS: Encodable {
        public var ca: String
        public var cert: String
        public var key: String
        public var crl: String?

        public init(ca: String, cert: String, key: String, crl: String? = nil) {
            self.ca = ca
            self.cert = cert
            self.key = key
            self.crl = crl
        }
    }

    public struct Tunnel: Encodable {
        public var pingInterval: String?
        public var deadAfter: Int?
        public var backoffMax: String?
        public var shutdownGrace: String?
        public var handshakeTimeout: String?

        public init(
            pingInterval: String? = nil, deadAfter: Int? = nil, backoffMax: String? = nil,
            shutdownGrace: String? = nil, handshakeTimeout: String? = nil
        ) {
            self.pingInterval = pingInterval
            self.deadAfter = deadAfter
            self.backoffMax = backoffMax
            self.shutdownGrace = shutdownGrace
            self.handshakeTimeout = handshakeTimeout
        }

        enum CodingKeys: String, CodingKey {
            case pingInterval = "ping_interval", deadAfter = "dead_after", backoffMax = "backoff_max"
            case shutdownGrace = "shutdown_grace", handshakeTimeout = "handshake_timeout"
        }
    }

    public struct Node: Encodable {
        public var address: String
        public var control: String

        public init(address: String, control: String) {
            self.address = address
            self.control = control
        }
    }

    public struct Service: Encodable {
        public var on: [String: String]
        public var allow: [String]

        public init(on: [String: String], allow: [String]) {
            self.on = on
            self.allow = allow
        }
    }

    public struct Forward: Encodable {
        public var on: String
        public var listen: String
        public var to: String

        public init(on: String, listen: String, to: String) {
            self.on = on
            self.listen = listen
            self.to = to
        }
    }

    public var mesh: String
    public var tls: TLS
    public var tunnel: Tunnel?
    public var nodes: [String: Node]
    public var services: [String: Service]
    public var forwards: [Forward]

    public init(
        mesh: String, tls: TLS, tunnel: Tunnel? = nil, nodes: [String: Node], services: [String: Service],
        forwards: [Forward]
    ) {
        self.mesh = mesh
        self.tls = tls
        self.tunnel = tunnel
        self.nodes = nodes
        self.services = services
        self.forwards = forwards
    }

    public func write(to url: URL) throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        try encoder.encode(self).write(to: url)
    }
}
