import Foundation
import MeshControl
import MeshTunnel
import NIOConcurrencyHelpers

/// A data source with set peers and a PING that answers per peer with a set duration or error:
/// the same protocol `MeshNode` serves through, so the server under test is the real one.
public final class FixedDataSource: ControlDataSource {
    public let name: String
    private let peers: NIOLockedValueBox<[PeerStatus]>
    /// Peer name -> round trip; a peer not listed fails like a link that is not up.
    private let answers: [String: Duration]
    private let pings = NIOLockedValueBox<Int>(0)

    public init(name: String, peers: [PeerStatus], answers: [String: Duration]) {
        self.name = name
        self.peers = NIOLockedValueBox(peers)
        self.answers = answers
    }

    public var pingCount: Int { self.pings.withLockedValue { $0 } }

    public func peerStatuses() -> [PeerStatus] {
        self.peers.withLockedValue { $0 }
    }

    public func ping(peer: String) async throws -> Duration {
        self.pings.withLockedValue { $0 += 1 }
        guard let rtt = self.answers[peer] else { throw NoTunnel(peer: peer) }
        if rtt > .seconds(1) { try await Task.sleep(for: rtt) }
        return rtt
    }
}

/// What a link that is not up answers, in the words `MeshNode` uses.
public struct NoTunnel: Error, CustomStringConvertible {
    public var peer: String
    public var description: String { "no tunnel to \(self.peer) is up" }
}
