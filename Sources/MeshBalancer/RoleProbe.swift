import Foundation
import Logging
import MeshConfig
import NIOCore
import NIOPosix

/// Probes this node's own PostgreSQL for one service every `probe_interval`, as `monitor_user`, and
/// hands each finding to `onReport` as a `BackendReport`: role, timeline, WAL position, replay lag and
/// pause, or `down` with the error. One connection is kept between probes; after a failure it is
/// dropped and the next probe connects afresh.
///
/// The client is libpq, PostgreSQL's own, without TLS (`sslmode=disable`, as the target is this
/// node's own server). Its calls block, so each probe runs them on a thread of its own with
/// libpq's non-blocking API: every wait ends at the probe's timeout or when the probe is stopped.
///
/// The monitor user needs `pg_monitor` (`GRANT pg_monitor TO meshmon`) so that the standby's WAL
/// receiver state and checkpoint timeline are visible to it.
public struct RoleProbe: Sendable {
    public var service: String
    public var node: String
    /// The service's target on this node (its `on` entry): TCP or a Unix socket.
    public var target: Endpoint
    public var settings: PostgresSettings
    /// Longest wait for a connection or an answer before the probe counts as failed.
    public var timeout: Duration

    /// Asks this node's Patroni in the same cycle; nil without a `patroni` key.
    private let patroni: PatroniProbe?
    private let logger: Logger
    private let onReport: @Sendable (BackendReport) -> Void

    /// The probe for `service` on `node`; nil when the service has no `postgres` block or is not
    /// served on `node`.
    public init?(
        service: ServiceSettings,
        node: String,
        logger: Logger,
        group: EventLoopGroup = MultiThreadedEventLoopGroup.singleton,
        onReport: @escaping @Sendable (BackendReport) -> Void
    ) {
        guard let settings = service.postgres, let target = service.on[node] else { return nil }
        self.patroni = PatroniProbe(settings: settings, node: node, group: group)
        self.service = service.name
        self.node = node
        self.target = target
        self.settings = settings
        // A probe may take up to two intervals (at least 1s): a slow answer is not yet a dead server.
        self.timeout = max(settings.probeInterval * 2, .seconds(1))
        self.logger = logger
        self.onReport = onReport
    }

    /// One statement for both roles; each CASE calls only the functions its role allows
    /// (pg_walfile_name fails during recovery, pg_is_wal_replay_paused outside it).
    /// - timeline: a primary's from its current WAL file name; a standby's from its last checkpoint.
    /// - lag: zero when the standby has replayed all it received and its WAL receiver is streaming
    ///   (an idle primary sends no transactions, so the replay timestamp alone would grow forever);
    ///   otherwise the age of the last replayed transaction; NULL when nothing was ever replayed.
    static let query = """
        SELECT r.recovery,
          CASE WHEN r.recovery THEN (SELECT timeline_id FROM pg_control_checkpoint())
               ELSE ('x' || substr(pg_walfile_name(pg_current_wal_lsn()), 1, 8))::bit(32)::int END,
          (CASE WHEN r.recovery THEN pg_last_wal_replay_lsn() ELSE pg_current_wal_lsn() END)::text,
          CASE WHEN NOT r.recovery THEN NULL
               WHEN pg_last_wal_receive_lsn() = pg_last_wal_replay_lsn()
                    AND EXISTS (SELECT 1 FROM pg_stat_wal_receiver WHERE status = 'streaming') THEN 0::float8
               ELSE extract(epoch FROM now() - pg_last_xact_replay_timestamp())::float8 END,
          CASE WHEN r.recovery THEN pg_is_wal_replay_paused() ELSE false END
        FROM (SELECT pg_is_in_recovery() AS recovery) AS r
        """

    /// Probes every `probe_interval` until the task is cancelled, then closes its connection.
    public func run() async {
        let thread = NIOThreadPool(numberOfThreads: 1)
        thread.start()
        let runID = UInt64.random(in: 1...UInt64.max)
        var sequence: UInt64 = 0
        var connection: LibPQConnection? = nil
        var interrupt: PollInterrupt? = nil
        let clock = ContinuousClock()
        var next = clock.now
        while !Task.isCancelled {
            // Patroni is asked while PostgreSQL is, so both describe the same moment.
            async let patroni = self.patroni?.ask()
            let health: BackendReport.Health
            do {
                let current = try interrupt ?? PollInterrupt()
                interrupt = current
                health = await self.probe(&connection, on: thread, interrupt: current)
            } catch {
                health = .down(error: "\(self.target): \(error)")
            }
            let patroniStatus = await patroni
            if Task.isCancelled { break }
            sequence += 1
            self.onReport(
                BackendReport(
                    service: self.service,
                    node: self.node,
                    runID: runID,
                    sequence: sequence,
                    reportedAt: Date(),
                    health: health,
                    patroni: patroniStatus
                )
            )
            // Keep the cadence, but never fire a burst to catch up after a slow probe.
            next = max(next + self.settings.probeInterval, clock.now)
            do { try await Task.sleep(until: next, clock: clock) } catch { break }
        }
        connection?.close()
        try? await thread.shutdownGracefully()
    }

    /// One probe. A kept connection that fails is retried once on a new one, so a restarted
    /// PostgreSQL does not show as down for a whole interval.
    func probe(_ connection: inout LibPQConnection?, on thread: NIOThreadPool, interrupt: PollInterrupt) async -> BackendReport.Health {
        for _ in 0..<2 {
            // libpq notices a closed connection only when it uses it; one it saw fail is done.
            if connection?.isBroken == true {
                connection?.close()
                connection = nil
            }
            let reused = connection != nil
            do {
                if connection == nil { connection = try await self.connect(on: thread, interrupt: interrupt) }
                return .up(try await self.query(connection!, on: thread, interrupt: interrupt))
            } catch {
                // After a timeout the server may still answer; a new connection starts clean.
                connection?.close()
                connection = nil
                if Task.isCancelled || !reused {
                    self.logger.debug("probe failed", metadata: ["service": "\(self.service)", "error": "\(self.describe(error))"])
                    return .down(error: self.describe(error))
                }
            }
        }
        return .down(error: "\(self.target): probe failed twice")
    }

    private func connect(on thread: NIOThreadPool, interrupt: PollInterrupt) async throws -> LibPQConnection {
        let parameters = try self.connectionParameters()
        let deadline = ContinuousClock.now + self.timeout
        return try await Self.blocking(on: thread, interrupt: interrupt) {
            try LibPQConnection.connect(parameters, deadline: deadline, interrupt: interrupt)
        }
    }

    /// libpq's connection keywords for the target. Nothing is left to libpq's defaults that would
    /// change what the probe does: no TLS or GSS encryption attempts (the target is this node's
    /// own server), and the server ends a statement the probe has given up on.
    func connectionParameters() throws -> [(keyword: String, value: String)] {
        var parameters: [(keyword: String, value: String)]
        switch self.target {
        case .tcp(let host, let port):
            parameters = [("host", host), ("port", "\(port)")]
        case .unix(let path):
            // libpq reaches a Unix socket by its directory and the port in its name.
            guard let socket = PostgresSocketPath(path) else { throw ProbeError.socketName(path) }
            parameters = [("host", socket.directory), ("port", "\(socket.port)")]
        }
        parameters += [
            ("user", self.settings.monitorUser), ("dbname", self.settings.database),
            ("sslmode", "disable"), ("gssencmode", "disable"),
            ("options", "-c statement_timeout=\(Int64((self.timeout / .milliseconds(1)).rounded(.up)))"),
        ]
        if let file = self.settings.passwordFile { parameters.append(("password", try Self.readPassword(file))) }
        return parameters
    }

    private func query(
        _ connection: LibPQConnection,
        on thread: NIOThreadPool,
        interrupt: PollInterrupt
    ) async throws -> BackendReport.Status {
        let deadline = ContinuousClock.now + self.timeout
        let rows = try await Self.blocking(on: thread, interrupt: interrupt) {
            try connection.query(Self.query, deadline: deadline, interrupt: interrupt)
        }
        guard let row = rows.first, row.count == 5 else { throw ProbeError.unexpectedAnswer("\(rows.count) rows") }
        guard let recovery = Self.bool(row[0]), let timeline = row[1].flatMap(Int32.init), let lsnText = row[2],
            let lsn = WALPosition(lsnText), let paused = Self.bool(row[4])
        else { throw ProbeError.unexpectedAnswer("\(row.map { $0 ?? "NULL" })") }
        let lag = try row[3].map { text in
            guard let seconds = Double(text) else { throw ProbeError.unexpectedAnswer("lag \"\(text)\"") }
            return Duration.milliseconds(Int64((seconds * 1000).rounded()))
        }
        return BackendReport.Status(
            role: recovery ? .standby : .primary,
            timeline: UInt32(bitPattern: timeline),
            lsn: lsn,
            replayLag: lag,
            replayPaused: paused
        )
    }

    /// PostgreSQL's text form of a boolean.
    private static func bool(_ text: String?) -> Bool? {
        switch text {
        case "t": true
        case "f": false
        default: nil
        }
    }

    /// Runs libpq's blocking `body` on the probe's thread; cancelling the caller fires `interrupt`,
    /// which ends any wait in `body` at once.
    private static func blocking<T: Sendable>(
        on thread: NIOThreadPool,
        interrupt: PollInterrupt,
        _ body: @escaping @Sendable () throws -> T
    ) async throws -> T {
        try await withTaskCancellationHandler {
            try await thread.runIfActive(body)
        } onCancel: {
            interrupt.fire()
        }
    }

    static func readPassword(_ path: String) throws -> String {
        do {
            let text = try String(contentsOfFile: path, encoding: .utf8)
            // Files written with `echo` end in a newline that is not part of the password.
            return String(text.trimmingSuffix { $0 == "\n" || $0 == "\r" })
        } catch {
            throw ProbeError.passwordFile(path, (error as NSError).localizedDescription)
        }
    }

    /// A one-line reason for a report and `meshctl backends`: what failed, and where.
    func describe(_ error: any Error) -> String {
        let target = "\(self.target)"
        switch error {
        case let error as ProbeError:
            return "\(target): \(error)"
        case LibPQError.server(let severity, let state, let message):
            return "\(target): \(severity) \(state): \(message) (as \(self.settings.monitorUser))"
        case LibPQError.client(let message):
            return "\(target): \(message)"
        case LibPQError.timedOut:
            return "\(target): no answer within \(DurationText.format(self.timeout))"
        case LibPQError.interrupted, is CancellationError:
            return "\(target): probe stopped"
        default:
            return "\(target): \(error)"
        }
    }
}

extension String {
    fileprivate func trimmingSuffix(while predicate: (Character) -> Bool) -> Substring {
        var end = self.endIndex
        while end > self.startIndex, predicate(self[self.index(before: end)]) { end = self.index(before: end) }
        return self[..<end]
    }
}
