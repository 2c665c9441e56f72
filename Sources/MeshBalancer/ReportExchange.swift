import Foundation
import Logging
import MeshConfig
import MeshTunnel
import NIOConcurrencyHelpers

/// Carries role reports between agents over the tunnels: this node's probe reports go into its own
/// registry and out to every peer as `backend-report` notes; a peer's notes come back into the
/// registry. A peer may only report on its own PostgreSQL: the sender is the tunnel's verified
/// certificate identity, and a report naming another node is dropped.
public final class ReportExchange: Sendable {
    public static let topic = "backend-report"

    private let registry: BackendRegistry
    private let node: MeshNode
    private let logger: Logger
    /// Called after each report the registry stored, local or remote.
    private let recorded: @Sendable (BackendReport) -> Void
    /// Peers already warned about a bad note; one line per peer, not one per second.
    private let warned = NIOLockedValueBox<Set<String>>([])

    public init(registry: BackendRegistry, node: MeshNode, logger: Logger, recorded: @escaping @Sendable (BackendReport) -> Void) {
        self.registry = registry
        self.node = node
        self.logger = logger
        self.recorded = recorded
    }

    /// Starts listening for peers' reports.
    public func start() {
        self.node.onNote { [weak self] peer, note in
            guard note.topic == Self.topic else { return }
            self?.received(note.payload, from: peer)
        }
    }

    /// Records a report of this node's own probe and sends it to every peer.
    public func publish(_ report: BackendReport) {
        if self.registry.record(report) { self.recorded(report) }
        guard let json = try? JSONEncoder().encode(report), let payload = String(data: json, encoding: .utf8) else { return }
        self.node.broadcast(PeerNote(topic: Self.topic, payload: payload))
    }

    func received(_ payload: String, from peer: String) {
        let report: BackendReport
        do {
            report = try JSONDecoder().decode(BackendReport.self, from: Data(payload.utf8))
        } catch {
            return self.reject(peer: peer, "an unreadable backend report (\(error))")
        }
        guard report.node == peer else {
            return self.reject(peer: peer, "a backend report about \(report.node); a node may only report on itself")
        }
        guard self.node.config.services[report.service]?.on[peer] != nil else {
            return self.reject(peer: peer, "a backend report for service \"\(report.service)\", which mesh.json does not serve on \(peer)")
        }
        if self.registry.record(report) { self.recorded(report) }
    }

    private func reject(peer: String, _ what: String) {
        let first = self.warned.withLockedValue { $0.insert(peer).inserted }
        if first {
            self.logger.warning("peer \(peer) sent \(what); ignored (further ones from \(peer) are logged at debug level)")
        } else {
            self.logger.debug("peer \(peer) sent \(what); ignored")
        }
    }
}
