import MeshBalancer
import MeshControlModel

extension BackendInfo {
    /// The row of `balancer` for one database node as the registry judged it.
    public init(balancer: String, state: BackendState, connectionsRW: Int, connectionsRO: Int) {
        self.init(
            balancer: balancer,
            service: state.service,
            node: state.node,
            role: "unknown",
            healthy: false,
            connectionsRW: connectionsRW,
            connectionsRO: connectionsRO,
            lastReport: state.latest?.reportedAt,
            reportAgeSeconds: state.age.map { $0 / .seconds(1) }
        )
        if case .down(let error) = state.latest?.health { self.lastError = error }
        switch state.availability {
        case .up(let status):
            self.state = "up"
            self.healthy = true
            self.role = status.role.rawValue
            self.timeline = status.timeline
            self.lsn = status.lsn.description
            self.lagSeconds = status.replayLag.map { $0 / .seconds(1) }
            self.replayPaused = status.replayPaused
        case .down(let error, let since):
            self.state = "down"
            self.lastError = error
            self.downSince = since
        case .unknown(let lastReport):
            self.state = "unknown"
            self.lastReport = lastReport ?? self.lastReport
        }
        if let patroni = state.patroni {
            self.patroniRole = patroni.role.rawValue
            switch patroni {
            case .answered(let answer):
                self.patroniState = answer.postgres
                self.patroniLeader = answer.leader
                self.patroniPaused = answer.paused
            case .unanswered(let error):
                self.patroniError = error
            }
        }
    }
}
