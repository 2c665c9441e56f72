import Foundation
import MeshConfig

/// The routing rules of one balancer (issue 5, point 3), as a pure function of the backends' states
/// and this agent's live connection counts:
/// - `rw` goes to the primary. If several nodes report primary, the one on the highest timeline wins;
///   a tie on the highest timeline is a split brain and rw is refused until it resolves.
/// - `ro` goes to a standby that is up, not paused and within `max_lag`, the one with the fewest live
///   connections, ties broken at random; when none qualifies, `ro_fallback` sends reads to the primary
///   (`primary`) or refuses them (`none`).
/// - While no node reports primary (a failover under way), a standby's lag is the age of the last
///   transaction of a primary that is gone, growing with no newer data anywhere to lag behind: then
///   the standbys holding the most WAL take reads whatever their lag, so reads go on through a
///   failover (with `synchronous_mode` the sync standby holds every acknowledged commit).
/// - A node whose Patroni says its PostgreSQL is not running (stopped, stopping, crashed, ...) is
///   never chosen for either, whatever its last PostgreSQL report said; it still counts when the
///   highest timeline is found, so its being stopped never lets an older primary take writes.
/// A refusal is a FATAL ErrorResponse (SQLSTATE 57P03) naming every node and why it was not used.
public struct Router: Sendable {
    public var balancer: String
    public var maxLag: Duration
    public var roFallback: ReadFallback
    /// Zone for the times in refusal messages ("down since 12:01:03").
    public var timeZone: TimeZone

    public init(balancer: String, maxLag: Duration, roFallback: ReadFallback, timeZone: TimeZone = .current) {
        self.balancer = balancer
        self.maxLag = maxLag
        self.roFallback = roFallback
        self.timeZone = timeZone
    }

    public init(settings: BalancerSettings, timeZone: TimeZone = .current) {
        self.init(balancer: settings.name, maxLag: settings.maxLag, roFallback: settings.roFallback, timeZone: timeZone)
    }

    /// The node for a new connection on `listener`, or the ErrorResponse to send the client.
    /// `connections`: live connections of this balancer per node (absent means none).
    public func choose(
        _ listener: ListenerKind,
        backends: [BackendState],
        connections: [String: Int],
        using random: inout some RandomNumberGenerator
    ) -> Result<String, ErrorResponse> {
        let primary = self.primary(among: backends)
        switch listener {
        case .rw:
            if case .chosen(let node) = primary { return .success(node) }
            return .failure(self.refusal("no primary available", details: self.primaryRefusalDetails(primary, backends)))
        case .ro:
            if let node = self.leastBusyStandby(among: backends, connections: connections, using: &random) {
                return .success(node)
            }
            switch (self.roFallback, primary) {
            case (.primary, .chosen(let node)):
                return .success(node)
            case (.primary, _):
                return .failure(self.refusal("no standby or primary available", details: self.readRefusalDetails(primary, backends)))
            case (.none, _):
                return .failure(self.refusal("no standby available", details: self.readRefusalDetails(primary, backends)))
            }
        }
    }

    /// `choose` with the system's random generator.
    public func choose(_ listener: ListenerKind, backends: [BackendState], connections: [String: Int]) -> Result<String, ErrorResponse> {
        var random = SystemRandomNumberGenerator()
        return self.choose(listener, backends: backends, connections: connections, using: &random)
    }

    // MARK: Rules

    /// The outcome of looking for the primary.
    enum PrimaryChoice: Equatable {
        case chosen(String)
        case none
        /// Several nodes report primary on the same, highest timeline.
        case splitBrain([String])
    }

    func primary(among backends: [BackendState]) -> PrimaryChoice {
        let primaries = backends.compactMap { backend -> (node: String, timeline: UInt32)? in
            guard let status = backend.status, status.role == .primary else { return nil }
            return (backend.node, status.timeline)
        }
        guard let highest = primaries.map(\.timeline).max() else { return .none }
        // A node still claiming primary on a lower timeline was demoted by a promotion it missed.
        let contenders = primaries.filter { $0.timeline == highest }.map(\.node).sorted()
        guard contenders.count == 1 else { return .splitBrain(contenders) }
        let stopped = backends.contains { $0.node == contenders[0] && $0.patroni?.saysPostgresNotRunning == true }
        return stopped ? .none : .chosen(contenders[0])
    }

    func qualifies(_ status: BackendReport.Status) -> Bool {
        guard status.role == .standby, !status.replayPaused, let lag = status.replayLag else { return false }
        return lag <= self.maxLag
    }

    /// Whether `backend` may take reads now: up, a standby, replaying, within `max_lag`.
    public func isReadable(_ backend: BackendState) -> Bool {
        guard backend.patroni?.saysPostgresNotRunning != true else { return false }
        return backend.status.map(self.qualifies) ?? false
    }

    /// The standbys that may take reads: those `isReadable`; or, when none is and no node reports
    /// primary, the unpaused standbys with the highest replayed WAL position.
    func readableStandbys(among backends: [BackendState]) -> [String] {
        let readable = backends.filter(self.isReadable).map(\.node)
        guard readable.isEmpty, self.primary(among: backends) == .none else { return readable }
        let standbys = backends.compactMap { backend -> (node: String, lsn: WALPosition)? in
            guard let status = backend.status, status.role == .standby, !status.replayPaused,
                backend.patroni?.saysPostgresNotRunning != true
            else { return nil }
            return (backend.node, status.lsn)
        }
        guard let newest = standbys.map(\.lsn).max() else { return [] }
        return standbys.filter { $0.lsn == newest }.map(\.node)
    }

    private func leastBusyStandby(
        among backends: [BackendState],
        connections: [String: Int],
        using random: inout some RandomNumberGenerator
    ) -> String? {
        let candidates = self.readableStandbys(among: backends)
        guard let fewest = candidates.map({ connections[$0] ?? 0 }).min() else { return nil }
        return candidates.filter { (connections[$0] ?? 0) == fewest }.randomElement(using: &random)
    }

    // MARK: Refusal messages

    private func refusal(_ what: String, details: [String]) -> ErrorResponse {
        ErrorResponse(
            code: .cannotConnectNow,
            message: "tunnelmesh: \(what) for \"\(self.balancer)\" (\(details.joined(separator: ", ")))"
        )
    }

    /// The contending primaries in a split brain; otherwise every node and its state.
    private func primaryRefusalDetails(_ primary: PrimaryChoice, _ backends: [BackendState]) -> [String] {
        guard case .splitBrain(let nodes) = primary else { return backends.map { "\($0.node): \(self.describe($0))" } }
        var details = backends.filter { nodes.contains($0.node) }.map { "\($0.node): \(self.describe($0))" }
        details[details.count - 1] += ": split brain"
        return details
    }

    private func readRefusalDetails(_ primary: PrimaryChoice, _ backends: [BackendState]) -> [String] {
        backends.map { backend in
            var text = "\(backend.node): \(self.describe(backend))"
            // A stopped PostgreSQL's replay is beside the point.
            if let status = backend.status, status.role == .standby, backend.patroni?.saysPostgresNotRunning != true {
                if status.replayPaused {
                    text += ", replay paused"
                } else if let lag = status.replayLag {
                    text += ", " + String(format: "%.1f", lag.seconds) + "s behind (max_lag \(DurationText.format(self.maxLag)))"
                } else {
                    text += ", lag unknown"
                }
            }
            if case .splitBrain(let nodes) = primary, nodes.contains(backend.node) { text += ", split brain" }
            return text
        }
    }

    private func describe(_ backend: BackendState) -> String {
        if case .answered(let patroni)? = backend.patroni, backend.patroni?.saysPostgresNotRunning == true {
            return "\(self.describeAvailability(backend)), PostgreSQL \(patroni.postgres) per Patroni"
        }
        return self.describeAvailability(backend)
    }

    private func describeAvailability(_ backend: BackendState) -> String {
        switch backend.availability {
        case .up(let status) where status.role == .primary: "primary on timeline \(status.timeline)"
        case .up: "standby"
        case .down(_, let since): "down since \(self.clock(since))"
        case .unknown(let last?): "no report since \(self.clock(last))"
        case .unknown(nil): "no report yet"
        }
    }

    private func clock(_ date: Date) -> String {
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = self.timeZone
        let parts = calendar.dateComponents([.hour, .minute, .second], from: date)
        return String(format: "%02d:%02d:%02d", parts.hour ?? 0, parts.minute ?? 0, parts.second ?? 0)
    }
}
