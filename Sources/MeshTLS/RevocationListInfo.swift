import Foundation

/// What a CRL says, as plain values: who signed it, when it was made and when it goes stale, what it revokes.
public struct RevocationListInfo: Codable, Sendable, Equatable {
    /// One revoked certificate: its serial (uppercase hex, as OpenSSL prints it) and when it was revoked.
    public struct Entry: Codable, Sendable, Equatable {
        public var serial: String
        public var revocationDate: Date
    }

    public var issuer: String
    public var lastUpdate: Date
    /// After this date OpenSSL rejects the CRL, and with it every handshake that checks it.
    public var nextUpdate: Date?
    /// The CRL number extension; it grows by one with every re-signing.
    public var number: Int?
    public var revoked: [Entry]

    public func revokes(serial: String) -> Bool {
        revoked.contains { $0.serial == serial }
    }
}
