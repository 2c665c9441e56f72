import Foundation

/// `meshctl backends` for a person: each database node a balancer here routes to.
public enum BackendsText {
    public static let headers = ["BALANCER", "SERVICE", "NODE", "ROLE", "HEALTH", "LAG", "LAST ERROR"]

    public static func render(_ backends: [BackendInfo], style: TextStyle) -> String {
        guard !backends.isEmpty else { return "no backends: no balancer runs on this node\n" }
        var table = TextTable(headers: self.headers)
        for backend in backends {
            table.append([
                .init(backend.balancer), .init(backend.service), .init(backend.node), .init(backend.role),
                backend.healthy ? .init("healthy", .good) : .init("unhealthy", .bad),
                backend.lagSeconds.map { .init(HumanUnits.rtt(seconds: $0)) } ?? .init("-", .dim),
                backend.lastError.map { .init(PeersText.shorten($0), .bad) } ?? .init("-", .dim),
            ])
        }
        return table.render(style)
    }
}
