import Foundation

/// `meshctl backends` for a person: each database node a balancer here routes to, with what its
/// latest report says and how many of the balancer's connections it holds (rw/ro).
public enum BackendsText {
    /// The columns; BALANCER comes first only when more than one balancer runs on this node.
    public static let headers = ["NODE", "ROLE", "STATE", "TIMELINE", "LSN", "LAG", "CONNS", "LAST REPORT", "LAST ERROR"]

    public static func render(_ backends: [BackendInfo], style: TextStyle) -> String {
        guard !backends.isEmpty else { return "no backends: no balancer runs on this node\n" }
        let named = Set(backends.map(\.balancer)).count > 1
        var table = TextTable(headers: (named ? ["BALANCER"] : []) + self.headers)
        for backend in backends {
            let none = TextTable.Cell("-", .dim)
            let row: [TextTable.Cell] = [
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
            table.append((named ? [.init(backend.balancer)] : []) + row)
        }
        return table.render(style)
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
