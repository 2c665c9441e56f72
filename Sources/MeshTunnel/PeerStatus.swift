import Foundation

/// What `meshctl peers` shows about one peer: a snapshot taken from the peer's link.
public struct PeerStatus: Sendable, Equatable, Codable {
    /// The link states `meshctl peers` shows; `down` carries the last error.
    public enum State: String, Sendable, Codable {
        case connecting, handshaking, up, down
    }

    public var name: String
    public var address: String
    /// True when this node dials the peer (its name sorts lower); false when it waits to be dialed.
    public var dialer: Bool
    public var state: State
    public var since: Date
    public var lastError: String?
    /// Round-trip time of the last answered HTTP/2 PING, in seconds.
    public var rttSeconds: Double?
    public var streamsActive: Int
    public var streamsTotal: UInt64
    public var bytesSent: UInt64
    public var bytesReceived: UInt64
    public var reconnects: UInt64
    public var certificateNotAfter: Date?
    /// The serial of the certificate the peer presented (uppercase hex), while a tunnel is up.
    public var certificateSerial: String?
    /// When the serving tunnel was authenticated (its TLS handshake completed).
    public var authenticatedAt: Date?
    /// The earliest `notAfter` of the certificates that authenticated the serving tunnel (both
    /// chains, leaves and CAs): it is closed then at the latest.
    public var credentialsNotAfter: Date?
    /// When the serving tunnel will be re-authenticated; nil when no newer certificate can be
    /// expected without a reload (see `credentialsNotAfter`).
    public var reauthenticateAt: Date?
    /// Older tunnels to the peer still finishing their streams after a fresh one took over.
    public var drainingTunnels: Int = 0
    /// Tunnels that took over from a serving one (certificate rotation), since start.
    public var reauthentications: UInt64 = 0
    /// Why the serving tunnel could not be re-authenticated (a failed renewal, or certificates due
    /// with nothing newer to present); nil once a renewal brought fresh ones.
    public var reauthenticationError: String?

    public init(name: String, address: String, dialer: Bool, state: State, since: Date) {
        self.name = name
        self.address = address
        self.dialer = dialer
        self.state = state
        self.since = since
        self.streamsActive = 0
        self.streamsTotal = 0
        self.bytesSent = 0
        self.bytesReceived = 0
        self.reconnects = 0
    }
}
