/// `POST /v1/peers/{name}/ping?count=N`: round trips through the tunnel itself (HTTP/2 PING frames).
///
/// Stable API: fields are added, never renamed or removed.
public struct PingReport: Codable, Sendable, Equatable {
    /// Upper bound on `count`, so one request cannot keep the agent busy for long.
    public static let maxCount = 100
    /// How long one PING may take before the request fails with 504.
    public static let timeout: Duration = .seconds(5)
    /// Pause between PINGs of one request, like ping(8)'s interval but shorter.
    public static let interval: Duration = .milliseconds(100)

    public var peer: String
    /// Round trip times in seconds, in the order they were measured.
    public var samplesSeconds: [Double]

    public init(peer: String, samplesSeconds: [Double]) {
        self.peer = peer
        self.samplesSeconds = samplesSeconds
    }

    public var minSeconds: Double? { self.samplesSeconds.min() }
    public var maxSeconds: Double? { self.samplesSeconds.max() }
    public var averageSeconds: Double? {
        self.samplesSeconds.isEmpty ? nil : self.samplesSeconds.reduce(0, +) / Double(self.samplesSeconds.count)
    }

    enum CodingKeys: String, CodingKey {
        case peer, count
        case samplesSeconds = "samples_seconds"
        case minSeconds = "min_seconds"
        case avgSeconds = "avg_seconds"
        case maxSeconds = "max_seconds"
    }

    public init(from decoder: Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        self.peer = try container.decode(String.self, forKey: .peer)
        self.samplesSeconds = try container.decode([Double].self, forKey: .samplesSeconds)
    }

    /// Also writes count and min/avg/max, so scripts need not compute them.
    public func encode(to encoder: Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(self.peer, forKey: .peer)
        try container.encode(self.samplesSeconds.count, forKey: .count)
        try container.encode(self.samplesSeconds, forKey: .samplesSeconds)
        try container.encode(self.minSeconds, forKey: .minSeconds)
        try container.encode(self.averageSeconds, forKey: .avgSeconds)
        try container.encode(self.maxSeconds, forKey: .maxSeconds)
    }
}
