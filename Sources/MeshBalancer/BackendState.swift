import Foundation

/// One database node of a service as this agent sees it now: its latest report, judged for age.
public struct BackendState: Sendable, Equatable {
    /// Whether the node can be routed to, and what is known about it.
    public enum Availability: Sendable, Equatable {
        /// A fresh report of a working PostgreSQL.
        case up(BackendReport.Status)
        /// A fresh report of a failed probe; `since` is the reporting node's time of the first failure
        /// in the current run of failures.
        case down(error: String, since: Date)
        /// No report within 3 probe intervals (or none at all): not routable. `lastReport` is the
        /// reporting node's time of the last report, nil if none ever came.
        case unknown(lastReport: Date?)
    }

    public var service: String
    public var node: String
    public var availability: Availability
    /// The latest report, fresh or not, for display (`meshctl backends`).
    public var latest: BackendReport?
    /// How long ago this agent received `latest`.
    public var age: Duration?
    /// What the node's Patroni said with a fresh report (up or down); nil once the report is stale,
    /// or when the node reports no Patroni.
    public var patroni: PatroniStatus?

    public init(
        service: String,
        node: String,
        availability: Availability,
        latest: BackendReport? = nil,
        age: Duration? = nil,
        patroni: PatroniStatus? = nil
    ) {
        self.service = service
        self.node = node
        self.availability = availability
        self.latest = latest
        self.age = age
        self.patroni = patroni
    }

    public var status: BackendReport.Status? {
        if case .up(let status) = self.availability { return status }
        return nil
    }
}
