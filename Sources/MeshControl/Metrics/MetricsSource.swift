import MeshTunnel

/// What one scrape reads from the running agent: every peer's status and the tunnel event counts.
/// Taken fresh at each scrape, so the metrics never drift from what `meshctl peers` shows.
public struct MetricsSnapshot: Sendable {
    /// Handshakes that failed, by peer (`unknown` when the peer never proved a declared name) and reason.
    public struct HandshakeFailures: Sendable, Equatable {
        public var peer: String
        public var reason: String
        public var count: UInt64

        public init(peer: String, reason: String, count: UInt64) {
            self.peer = peer
            self.reason = reason
            self.count = count
        }
    }

    /// Streams by peer, service and outcome (`opened`, `refused`, `failed`).
    public struct StreamOutcomes: Sendable, Equatable {
        public var peer: String
        public var service: String
        public var result: String
        public var count: UInt64

        public init(peer: String, service: String, result: String, count: UInt64) {
            self.peer = peer
            self.service = service
            self.result = result
            self.count = count
        }
    }

    public var peers: [PeerStatus]
    public var handshakeFailures: [HandshakeFailures]
    public var streams: [StreamOutcomes]

    public init(peers: [PeerStatus], handshakeFailures: [HandshakeFailures] = [], streams: [StreamOutcomes] = []) {
        self.peers = peers
        self.handshakeFailures = handshakeFailures
        self.streams = streams
    }
}

/// Where the metrics come from at scrape time; `MeshNode` is the real source.
public protocol MetricsSource: Sendable {
    func metricsSnapshot() -> MetricsSnapshot
}

extension MeshNode: MetricsSource {
    /// The peer table and the tunnel event counters, read now; nothing is copied or cached in between.
    public func metricsSnapshot() -> MetricsSnapshot {
        MetricsSnapshot(
            peers: self.peers.snapshot(),
            handshakeFailures: self.events.handshakeFailures().map {
                .init(peer: $0.key.peer, reason: $0.key.reason, count: $0.value)
            },
            streams: self.events.streams().map {
                .init(peer: $0.key.peer, service: $0.key.service, result: $0.key.result.rawValue, count: $0.value)
            }
        )
    }
}
