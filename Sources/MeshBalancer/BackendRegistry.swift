import Foundation
import MeshConfig
import NIOConcurrencyHelpers
import NIOCore

/// The one place on an agent that holds the latest role report of every database node, per service.
/// Reports arrive from the local probe and from peers; balancers route from it and `meshctl backends`
/// and the metrics read it. Safe to use from any thread.
public final class BackendRegistry: Sendable {
    /// Reports older than this many probe intervals no longer count: the node is `unknown`.
    public static let staleAfterIntervals = 3

    private struct Key: Hashable {
        var service: String
        var node: String
    }

    private struct Entry {
        var report: BackendReport
        /// This agent's monotonic clock at receipt: expiry must not depend on the nodes' wall clocks.
        var receivedAt: NIODeadline
        var downSince: Date?
    }

    private struct State {
        var entries: [Key: Entry] = [:]
        var probeIntervals: [String: Duration]
    }

    private let state: NIOLockedValueBox<State>

    /// `probeIntervals`: service name -> its `postgres.probe_interval`.
    public init(probeIntervals: [String: Duration]) {
        self.state = NIOLockedValueBox(State(probeIntervals: probeIntervals))
    }

    /// A registry for the services of `config` that have a `postgres` block.
    public convenience init(config: MeshConfiguration) {
        self.init(probeIntervals: Self.probeIntervals(of: config))
    }

    /// Follows a reloaded configuration: new intervals apply at once; reports of services or nodes
    /// no longer declared are dropped.
    public func update(config: MeshConfiguration) {
        let intervals = Self.probeIntervals(of: config)
        self.state.withLockedValue { state in
            state.probeIntervals = intervals
            state.entries = state.entries.filter { key, _ in config.services[key.service]?.on[key.node] != nil }
        }
    }

    private static func probeIntervals(of config: MeshConfiguration) -> [String: Duration] {
        config.services.compactMapValues { $0.postgres?.probeInterval }
    }

    /// Stores `report` unless the registry already holds a later one of the same probe run.
    /// Returns whether it was stored.
    @discardableResult
    public func record(_ report: BackendReport, receivedAt: NIODeadline = .now()) -> Bool {
        let key = Key(service: report.service, node: report.node)
        return self.state.withLockedValue { state in
            let previous = state.entries[key]
            if let previous, previous.report.runID == report.runID, previous.report.sequence >= report.sequence {
                return false
            }
            var downSince: Date? = nil
            if case .down = report.health {
                // A run of failures keeps its first time, so "down since" does not move every second.
                let wasDown = previous.map { if case .down = $0.report.health { true } else { false } } ?? false
                downSince = wasDown ? previous?.downSince : report.reportedAt
            }
            state.entries[key] = Entry(report: report, receivedAt: receivedAt, downSince: downSince)
            return true
        }
    }

    /// The nodes of `service` named in `nodes` (the service's `on` keys), each judged at `now`.
    public func backends(service: String, nodes: some Sequence<String>, at now: NIODeadline = .now()) -> [BackendState] {
        self.state.withLockedValue { state in
            nodes.map { node in
                Self.judge(
                    Key(service: service, node: node),
                    entry: state.entries[Key(service: service, node: node)],
                    state: state,
                    now: now
                )
            }
        }
    }

    /// Every node with a report, sorted by service then node: what `meshctl backends` lists.
    public func snapshot(at now: NIODeadline = .now()) -> [BackendState] {
        self.state.withLockedValue { state in
            state.entries.keys.sorted { ($0.service, $0.node) < ($1.service, $1.node) }.map {
                Self.judge($0, entry: state.entries[$0], state: state, now: now)
            }
        }
    }

    private static func judge(_ key: Key, entry: Entry?, state: State, now: NIODeadline) -> BackendState {
        guard let entry else {
            return BackendState(service: key.service, node: key.node, availability: .unknown(lastReport: nil))
        }
        let age = Duration(now - entry.receivedAt)
        let interval = state.probeIntervals[key.service] ?? PostgresSettings().probeInterval
        let availability: BackendState.Availability
        var patroni: PatroniStatus? = nil
        if age > interval * Self.staleAfterIntervals {
            availability = .unknown(lastReport: entry.report.reportedAt)
        } else {
            patroni = entry.report.patroni
            switch entry.report.health {
            case .up(let status): availability = .up(status)
            case .down(let error): availability = .down(error: error, since: entry.downSince ?? entry.report.reportedAt)
            }
        }
        return BackendState(
            service: key.service,
            node: key.node,
            availability: availability,
            latest: entry.report,
            age: age,
            patroni: patroni
        )
    }
}

extension Duration {
    init(_ amount: TimeAmount) {
        self = .nanoseconds(amount.nanoseconds)
    }
}
