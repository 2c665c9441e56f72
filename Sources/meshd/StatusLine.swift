import Foundation
import MeshControlModel
import MeshTunnel

/// The words `systemctl status meshd` shows after "Status:": how many peers are up, the last
/// reload if it failed (or when the last one succeeded), and whatever else registers a part
/// (the balancer's routes, e.g. `rw->db1, ro: db2`).
struct StatusLine: Sendable {
    /// Extra parts in order; each returns nil when it has nothing to say.
    var parts: [@Sendable () -> String?] = []

    func text(peers: [PeerStatus], lastReload: ReloadOutcome?) -> String {
        var words = [Self.peers(peers)]
        words += self.parts.compactMap { $0() }
        if let lastReload { words.append(Self.reload(lastReload)) }
        return words.joined(separator: ", ")
    }

    /// `2/3 peers up (db2 down)`; at most three names, then a count.
    static func peers(_ peers: [PeerStatus]) -> String {
        let up = peers.filter { $0.state == .up }.count
        let notUp = peers.filter { $0.state != .up }
        var text = "\(up)/\(peers.count) peers up"
        if !notUp.isEmpty {
            let shown = notUp.prefix(3).map { "\($0.name) \($0.state.rawValue)" }
            let more = notUp.count > 3 ? ", \(notUp.count - 3) more" : ""
            text += " (\(shown.joined(separator: ", "))\(more))"
        }
        return text
    }

    /// A failed reload stays visible until one succeeds, since the old config is still running.
    static func reload(_ outcome: ReloadOutcome) -> String {
        let at = outcome.at.formatted(.iso8601)
        if outcome.ok { return "config reloaded \(at)" }
        return "reload failed \(at), running the previous config: \(outcome.error ?? "unknown error")"
    }
}
