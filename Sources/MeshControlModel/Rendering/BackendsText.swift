import Foundation

/// `meshctl backends` for a person: each database node a balancer here routes to, with what its
/// latest report says and how many of the balancer's connections it holds (rw/ro).
public enum BackendsText {
    /// The columns; BALANCER comes first only when more than one balancer runs on this node.
    public static let headers = ["NODE", "ROLE", "STATE", "TIMELINE", "LSN", "LAG", "CONNS", "LAST REPORT", "LAST ERROR"]

    public static func render(_ backends: [BackendInfo], style: TextStyle) -> String {
        guard !backends.isEmpty else { return "no backends: no balancer runs on this node\n" }
        let named = Set(backends.map(\.balancer)).count > 1
        // Meshes without Patroni keep the table they always had.
        let patroni = backends.contains { $0.patroniRole != nil }
        var headers = self.headers
        if patroni { headers.insert("PATRONI", at: headers.firstIndex(of: "TIMELINE")!) }
        var table = TextTable(headers: (named ? ["BALANCER"] : []) + headers)
        for backend in backends {
            let none = TextTable.Cell("-", .dim)
            var row: [TextTable.Cell] = [
                .init(backend.node),
                backend.healthy ? .init(backend.role) : .init(backend.role, .dim),
                .init(backend.state, PeersText.paint(state: backend.state)),
                backend.timeline.map { .init("\($0)") } ?? none,
                backend.lsn.map { .init($0) } ?? none,
                self.lag(backend) ?? none,
                // this balancer's connections open now through rw / through ro
                .init("\(backend.connectionsRW)/\(backend.connectionsRO)"),
                self.lastReport(backend),
                // An up node's past error is history; --json keeps it.
                backend.healthy ? none : backend.lastError.map { .init(PeersText.shorten($0), .bad) } ?? none,
            ]
            if patroni { row.insert(self.patroni(backend) ?? none, at: 3) }
            table.append((named ? [.init(backend.balancer)] : []) + row)
        }
        let leaders = patroni ? self.leaderLines(backends, named: named) : []
        return table.render(style) + leaders.map { $0 + "\n" }.joined()
    }

    /// Patroni's role for the node, with PostgreSQL's state when it is not `running` (such a
    /// node is never routed to) and `paused` when Patroni's management is.
    private static func patroni(_ backend: BackendInfo) -> TextTable.Cell? {
        guard let role = backend.patroniRole else { return nil }
        guard let state = backend.patroniState else { return .init(role, .warning) }
        let text = [role, state == "running" ? nil : state, backend.patroniPaused == true ? "paused" : nil]
            .compactMap { $0 }.joined(separator: " ")
        return .init(text, state == "running" ? nil : .bad)
    }

    /// The DCS leader per balancer, as the nodes' Patroni see it: `DCS leader: db1`, or every
    /// answer with the nodes that gave it when they differ (`db1 (db1, db2), none (db3)`).
    private static func leaderLines(_ backends: [BackendInfo], named: Bool) -> [String] {
        var balancers: [String] = []
        for backend in backends where !balancers.contains(backend.balancer) { balancers.append(backend.balancer) }
        return balancers.map { balancer in
            var views: [(leader: String, nodes: [String])] = []
            for backend in backends where backend.balancer == balancer && backend.patroniState != nil {
                let leader = backend.patroniLeader ?? "none"
                if let index = views.firstIndex(where: { $0.leader == leader }) {
                    views[index].nodes.append(backend.node)
                } else {
                    views.append((leader, [backend.node]))
                }
            }
            let text: String
            switch views.count {
            case 0: text = "unknown (no Patroni answered)"
            case 1: text = views[0].leader
            default: text = views.map { "\($0.leader) (\($0.nodes.joined(separator: ", ")))" }.joined(separator: ", ")
            }
            return (named ? "\(balancer): " : "") + "DCS leader: \(text)"
        }
    }

    /// A standby's lag, marked when its replay is paused (reads then avoid it).
    private static func lag(_ backend: BackendInfo) -> TextTable.Cell? {
        let lag = backend.lagSeconds.map { HumanUnits.lag(seconds: $0) }
        guard backend.replayPaused == true else { return lag.map { .init($0) } }
        return .init((lag.map { $0 + " " } ?? "") + "paused", .warning)
    }

    private static func lastReport(_ backend: BackendInfo) -> TextTable.Cell {
        guard let age = backend.reportAgeSeconds else { return .init("never", .warning) }
        return .init(HumanUnits.age(seconds: age), backend.state == "unknown" ? .warning : nil)
    }
}
