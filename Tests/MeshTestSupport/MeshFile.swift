import Foundation

/// mesh.json as a Swift value, written by the tests exactly as an operator would write the file
/// (README.md's schema, "mesh.json"; keys in snake_case, optional blocks omitted when nil).
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
        public var reauthenticateBefore: String?

        public init(
            pingInterval: String? = nil,
            deadAfter: Int? = nil,
            backoffMax: String? = nil,
            shutdownGrace: String? = nil,
            handshakeTimeout: String? = nil,
            reauthenticateBefore: String? = nil
        ) {
            self.pingInterval = pingInterval
            self.deadAfter = deadAfter
            self.backoffMax = backoffMax
            self.shutdownGrace = shutdownGrace
            self.handshakeTimeout = handshakeTimeout
            self.reauthenticateBefore = reauthenticateBefore
        }

        enum CodingKeys: String, CodingKey {
            case pingInterval = "ping_interval"
            case deadAfter = "dead_after"
            case backoffMax = "backoff_max"
            case shutdownGrace = "shutdown_grace"
            case handshakeTimeout = "handshake_timeout"
            case reauthenticateBefore = "reauthenticate_before"
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
        public var postgres: Postgres?
        public var sameAddress: Bool?
        public var preconnect: Int?

        public init(on: [String: String], allow: [String], postgres: Postgres? = nil, sameAddress: Bool? = nil, preconnect: Int? = nil) {
            self.on = on
            self.allow = allow
            self.postgres = postgres
            self.sameAddress = sameAddress
            self.preconnect = preconnect
        }

        enum CodingKeys: String, CodingKey {
            case on, allow, postgres, preconnect
            case sameAddress = "same_address"
        }
    }

    /// A service's `postgres` block: how its nodes probe their own PostgreSQL.
    public struct Postgres: Encodable {
        public var monitorUser: String
        public var database: String?
        public var passwordFile: String?
        public var probeInterval: String?
        /// The service whose `on` gives each node's Patroni REST API.
        public var patroni: String?

        public init(
            monitorUser: String = "meshmon",
            database: String? = nil,
            passwordFile: String? = nil,
            probeInterval: String? = nil,
            patroni: String? = nil
        ) {
            self.monitorUser = monitorUser
            self.database = database
            self.passwordFile = passwordFile
            self.probeInterval = probeInterval
            self.patroni = patroni
        }

        enum CodingKeys: String, CodingKey {
            case monitorUser = "monitor_user"
            case database, patroni
            case passwordFile = "password_file"
            case probeInterval = "probe_interval"
        }
    }

    public struct Balancer: Encodable {
        public struct Listeners: Encodable {
            public var rw: String?
            public var ro: String?

            public init(rw: String? = nil, ro: String? = nil) {
                self.rw = rw
                self.ro = ro
            }
        }

        /// `balancers.<name>.tls`: the balancer's own certificate for clients that ask for SSL.
        public struct TLS: Encodable {
            public var cert: String
            public var key: String

            public init(cert: String, key: String) {
                self.cert = cert
                self.key = key
            }
        }

        public var service: String
        public var on: [String: Listeners]
        public var maxLag: String?
        public var roFallback: String?
        public var tls: TLS?

        public init(service: String, on: [String: Listeners], maxLag: String? = nil, roFallback: String? = nil, tls: TLS? = nil) {
            self.service = service
            self.on = on
            self.maxLag = maxLag
            self.roFallback = roFallback
            self.tls = tls
        }

        enum CodingKeys: String, CodingKey {
            case service, on, tls
            case maxLag = "max_lag"
            case roFallback = "ro_fallback"
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
    public var balancers: [String: Balancer]?

    public init(
        mesh: String,
        tls: TLS,
        tunnel: Tunnel? = nil,
        nodes: [String: Node],
        services: [String: Service],
        forwards: [Forward],
        balancers: [String: Balancer]? = nil
    ) {
        self.balancers = balancers
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
        // Atomic: a meshd starting meanwhile must never read a half-written (or empty) file.
        try encoder.encode(self).write(to: url, options: .atomic)
    }
}
