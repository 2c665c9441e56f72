import Foundation

/// The result of the last configuration load: the startup load until `reload` exists.
///
/// Stable API: fields are added, never renamed or removed.
public struct ReloadOutcome: Codable, Sendable, Equatable {
    public var ok: Bool
    public var at: Date
    /// Why the load failed, when `ok` is false.
    public var error: String?
    /// What a successful reload changed (peers, forwards, revocations), in words.
    public var summary: String?

    public init(ok: Bool, at: Date, error: String? = nil, summary: String? = nil) {
        self.ok = ok
        self.at = at
        self.error = error
        self.summary = summary
    }

    enum CodingKeys: String, CodingKey {
        case ok, at, error, summary
    }

    public func encode(to encoder: Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(self.ok, forKey: .ok)
        try container.encode(self.at, forKey: .at)
        try container.encode(self.error, forKey: .error)
        try container.encode(self.summary, forKey: .summary)
    }
}
