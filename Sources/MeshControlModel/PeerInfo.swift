import Foundation

/// One element of `GET /v1/peers`: a peer's tunnel as the agent's peer table saw it.
///
/// Stable API: fields are added, never renamed or removed. Kept apart from `PeerStatus` so the wire
/// format does not change when the tunnel's internal struct does.
public struct PeerInfo: Codable, Sendable, Equatable {
    public var name: String
    public var address: String
    /// True when this node dials the peer; false when it waits for the peer to dial.
    public var dialer: Bool
    /// `connecting`, `handshaking`, `up` or `down`.
    public var state: String
    /// When the peer entered `state`.
    public var since: Date
    public var lastError: String?
    public var rttSeconds: Double?
    public var streamsActive: Int
    public var streamsTotal: UInt64
    public var bytesSent: UInt64
    public var bytesReceived: UInt64
    public var reconnects: UInt64
    /// Expiry of the certificate the peer presented on its current (or last) tunnel.
    public var certificateNotAfter: Date?
    /// When the serving tunnel was authenticated (its TLS handshake), while up.
    public var authenticatedAt: Date?
    /// The earliest notAfter of the certificates (both chains, leaves and CAs) that authenticated
    /// the serving tunnel: it is renewed before, and closed then at the latest.
    public var credentialsNotAfter: Date?
    /// When the serving tunnel will be re-authenticated; null while up means no newer certificate
    /// is to be had without a reload, and the tunnel closes at `credentialsNotAfter`.
    public var reauthenticateAt: Date?
    /// Older tunnels still finishing their streams after a fresh one took over (absent from older agents).
    public var drainingTunnels: Int?
    /// Tunnels that took over from a serving one since start (absent from older agents).
    public var reauthentications: UInt64?
    /// Why the serving tunnel could not be re-authenticated, while that matters; null once a
    /// renewal succeeded.
    public var reauthenticationError: String?

    public init(
        name: String,
        address: String,
        dialer: Bool,
        state: String,
        since: Date,
        lastError: String? = nil,
        rttSeconds: Double? = nil,
        streamsActive: Int = 0,
        streamsTotal: UInt64 = 0,
        bytesSent: UInt64 = 0,
        bytesReceived: UInt64 = 0,
        reconnects: UInt64 = 0,
        certificateNotAfter: Date? = nil,
        authenticatedAt: Date? = nil,
        credentialsNotAfter: Date? = nil,
        reauthenticateAt: Date? = nil,
        drainingTunnels: Int? = nil,
        reauthentications: UInt64? = nil,
        reauthenticationError: String? = nil
    ) {
        self.name = name
        self.address = address
        self.dialer = dialer
        self.state = state
        self.since = since
        self.lastError = lastError
        self.rttSeconds = rttSeconds
        self.streamsActive = streamsActive
        self.streamsTotal = streamsTotal
        self.bytesSent = bytesSent
        self.bytesReceived = bytesReceived
        self.reconnects = reconnects
        self.certificateNotAfter = certificateNotAfter
        self.authenticatedAt = authenticatedAt
        self.credentialsNotAfter = credentialsNotAfter
        self.reauthenticateAt = reauthenticateAt
        self.drainingTunnels = drainingTunnels
        self.reauthentications = reauthentications
        self.reauthenticationError = reauthenticationError
    }

    public var isUp: Bool { self.state == "up" }

    enum CodingKeys: String, CodingKey {
        case name, address, dialer, state, since, reconnects
        case lastError = "last_error"
        case rttSeconds = "rtt_seconds"
        case streamsActive = "streams_active"
        case streamsTotal = "streams_total"
        case bytesSent = "bytes_sent"
        case bytesReceived = "bytes_received"
        case certificateNotAfter = "certificate_not_after"
        case authenticatedAt = "authenticated_at"
        case credentialsNotAfter = "credentials_not_after"
        case reauthenticateAt = "reauthenticate_at"
        case drainingTunnels = "draining_tunnels"
        case reauthentications
        case reauthenticationError = "reauthentication_error"
    }

    /// Writes `null` for absent optionals so every key is always present for scripts (`jq .rtt_seconds`).
    public func encode(to encoder: Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(self.name, forKey: .name)
        try container.encode(self.address, forKey: .address)
        try container.encode(self.dialer, forKey: .dialer)
        try container.encode(self.state, forKey: .state)
        try container.encode(self.since, forKey: .since)
        try container.encode(self.lastError, forKey: .lastError)
        try container.encode(self.rttSeconds, forKey: .rttSeconds)
        try container.encode(self.streamsActive, forKey: .streamsActive)
        try container.encode(self.streamsTotal, forKey: .streamsTotal)
        try container.encode(self.bytesSent, forKey: .bytesSent)
        try container.encode(self.bytesReceived, forKey: .bytesReceived)
        try container.encode(self.reconnects, forKey: .reconnects)
        try container.encode(self.certificateNotAfter, forKey: .certificateNotAfter)
        try container.encode(self.authenticatedAt, forKey: .authenticatedAt)
        try container.encode(self.credentialsNotAfter, forKey: .credentialsNotAfter)
        try container.encode(self.reauthenticateAt, forKey: .reauthenticateAt)
        try container.encode(self.drainingTunnels, forKey: .drainingTunnels)
        try container.encode(self.reauthentications, forKey: .reauthentications)
        try container.encode(self.reauthenticationError, forKey: .reauthenticationError)
    }
}
