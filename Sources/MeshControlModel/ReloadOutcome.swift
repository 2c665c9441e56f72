import Foundation

/// The result of the last configuration load: the startup load until `reload` exists. A dry run
/// (`POST /v1/reload?dry_run=true`) answers with the same shape, `dry_run` true and `changes` set.
///
/// Stable API: fields are added, never renamed or removed.
public struct ReloadOutcome: Codable, Sendable, Equatable {
    public var ok: Bool
    public var at: Date
    /// Why the load failed, when `ok` is false.
    public var error: String?
    /// What a successful reload changed (peers, forwards, revocations), in words.
    public var summary: String?
    /// True when nothing was applied: the answer of a dry run.
    public var dryRun: Bool
    /// A dry run's plan, grouped by kind (tunnels, listeners, services, balancers); empty when
    /// nothing would change, null for a reload that was applied or refused.
    public var changes: [ConfigChange]?

    public init(ok: Bool, at: Date, error: String? = nil, summary: String? = nil, dryRun: Bool = false, changes: [ConfigChange]? = nil) {
        self.ok = ok
        self.at = at
        self.error = error
        self.summary = summary
        self.dryRun = dryRun
        self.changes = changes
    }

    enum CodingKeys: String, CodingKey {
        case ok, at, error, summary
        case dryRun = "dry_run"
        case changes
    }

    /// Tolerates the answer of an agent older than `dry_run` and `changes`.
    public init(from decoder: Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        self.ok = try container.decode(Bool.self, forKey: .ok)
        self.at = try container.decode(Date.self, forKey: .at)
        self.error = try container.decodeIfPresent(String.self, forKey: .error)
        self.summary = try container.decodeIfPresent(String.self, forKey: .summary)
        self.dryRun = try container.decodeIfPresent(Bool.self, forKey: .dryRun) ?? false
        self.changes = try container.decodeIfPresent([ConfigChange].self, forKey: .changes)
    }

    public func encode(to encoder: Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(self.ok, forKey: .ok)
        try container.encode(self.at, forKey: .at)
        try container.encode(self.error, forKey: .error)
        try container.encode(self.summary, forKey: .summary)
        try container.encode(self.dryRun, forKey: .dryRun)
        try container.encode(self.changes, forKey: .changes)
    }
}
