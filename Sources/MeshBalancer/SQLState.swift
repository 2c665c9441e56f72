import NIOCore

/// A five-character SQLSTATE error code.
public struct SQLState: RawRepresentable, Sendable, Hashable {
    public var rawValue: String
    public init(rawValue: String) { self.rawValue = rawValue }

    /// cannot_connect_now: no backend can take the connection right now (PostgreSQL uses it while starting up).
    public static let cannotConnectNow = SQLState(rawValue: "57P03")
    /// connection_failure: the path to the chosen backend failed.
    public static let connectionFailure = SQLState(rawValue: "08006")
    /// protocol_violation: the client sent something that is not the PostgreSQL protocol.
    public static let protocolViolation = SQLState(rawValue: "08P01")
    /// feature_not_supported: e.g. a frontend protocol version other than 3.x.
    public static let featureNotSupported = SQLState(rawValue: "0A000")
}
