import Logging
import MeshConfig
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix

/// Runs one `RoleProbe` for each service with a `postgres` block that this node serves, and
/// follows reloads: a probe whose service or settings changed is restarted, a removed one stopped.
public final class LocalProbes: Sendable {
    private struct Running {
        var service: ServiceSettings
        var task: Task<Void, Never>
    }

    private let node: String
    private let logger: Logger
    /// The loop group Patroni's REST API is read on.
    private let group: EventLoopGroup
    private let onReport: @Sendable (BackendReport) -> Void
    private let running = NIOLockedValueBox<[String: Running]>([:])

    public init(
        node: String,
        logger: Logger,
        group: EventLoopGroup = MultiThreadedEventLoopGroup.singleton,
        onReport: @escaping @Sendable (BackendReport) -> Void
    ) {
        self.node = node
        self.logger = logger
        self.group = group
        self.onReport = onReport
    }

    /// Starts, restarts and stops probes so that exactly those of `config` run.
    public func apply(_ config: MeshConfiguration) {
        let wanted = config.services.filter { $0.value.postgres != nil && $0.value.on[self.node] != nil }
        let stale: [Task<Void, Never>] = self.running.withLockedValue { running in
            var stale: [Task<Void, Never>] = []
            for (name, entry) in running where wanted[name] != entry.service {
                stale.append(entry.task)
                running.removeValue(forKey: name)
            }
            for (name, service) in wanted where running[name] == nil {
                guard
                    let probe = RoleProbe(
                        service: service,
                        node: self.node,
                        logger: self.logger,
                        group: self.group,
                        onReport: self.onReport
                    )
                else { continue }
                let patroni = service.postgres?.patroni?.api[self.node].map { ", and Patroni at \($0)" } ?? ""
                self.logger.info(
                    "probing PostgreSQL of \(name) at \(probe.target)\(patroni) every \(service.postgres!.probeInterval)"
                )
                running[name] = Running(service: service, task: Task { await probe.run() })
            }
            return stale
        }
        for task in stale { task.cancel() }
    }

    /// Stops every probe and waits for each to close its connection.
    public func stop() async {
        let tasks = self.running.withLockedValue { running in
            defer { running.removeAll() }
            return running.values.map(\.task)
        }
        for task in tasks { task.cancel() }
        for task in tasks { await task.value }
    }
}
