import Foundation
import Logging
import MeshConfig
import NIOCore
import NIOPosix
import NIOConcurrencyHelpers
import PostgresNIO

/// Probes this node's own PostgreSQL for one service every `probe_interval`, as `monitor_user`, and
/// hands each finding to `onReport` as a `BackendReport`: role, timeline, WAL position, replay lag and
/// pause, or `down` with the error. One connection is kept between probes; after a failure it is
/// dropped and the next probe connects afresh.
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

    private let eventLoopGroup: any EventLoopGroup
    private let logger: Logger
    private let onReport: @Sendable (BackendReport) -> Void

    /// The probe for `service` on `node`; nil when the service has no `postgres` block or is not
    /// served on `node`.
    public init?(
        service: ServiceSettings, node: String, eventLoopGroup: any EventLoopGroup, logger: Logger,
        onReport: @escaping @Sendable (BackendReport) -> Void
    ) {
        guard let settings = service.postgres, let target = service.on[node] else { return nil }
        self.service = service.name
        self.node = node
        self.target = target
        self.settings = settings
        // A probe may take up to two intervals (at least 1s): a slow answer is not yet a dead server.
        self.timeout = max(settings.probeInterval * 2, .seconds(1))
        self.eventLoopGroup = eventLoopGroup
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
        let runID = UInt64.random(in: 1...UInt64.max)
        var sequence: UInt64 = 0
        var connection: PostgresConnection? = nil
        let clock = ContinuousClock()
        var next = clock.now
        while !Task.isCancelled {
            let health = await self.probe(&connection)
            if Task.isCancelled { break }
            sequence += 1
            self.onReport(
                BackendReport(service: self.service, node: self.node, runID: runID, sequence: sequence, reportedAt: Date(), health: health))
            // Keep the cadence, but never fire a burst to catch up after a slow probe.
            next = max(next + self.settings.probeInterval, clock.now)
            do { try await Task.sleep(until: next, clock: clock) } catch { break }
        }
        try? await connection?.close()
    }

    /// One probe. A kept connection that fails is retried once on a new one, so a restarted
    /// PostgreSQL does not show as down for a whole interval.
    func probe(_ connection: inout PostgresConnection?) async -> BackendReport.Health {
        for _ in 0..<2 {
            // A connection the server closed cannot run a query (and postgres-nio would never answer).
            if connection?.isClosed == true { connection = nil }
            let reused = connection != nil
            do {
                if connection == nil { connection = try await self.connect() }
                return .up(try await self.query(connection!))
            } catch {
                if let failed = connection { failed.close().whenComplete { _ in } }
                connection = nil
                if Task.isCancelled || !reused {
                    self.logger.debug("probe failed", metadata: ["service": "\(self.service)", "error": "\(self.describe(error))"])
                    return .down(error: self.describe(error))
                }
            }
        }
        return .down(error: "\(self.target): probe failed twice")
    }

    private func connect() async throws -> PostgresConnection {
        let password = try self.settings.passwordFile.map(Self.readPassword)
        var configuration: PostgresConnection.Configuration
        switch self.target {
        case .tcp(let host, let port):
            configuration = .init(
                host: host, port: port, username: self.settings.monitorUser, password: password,
                database: self.settings.database, tls: .disable)
        case .unix(let path):
            configuration = .init(
                unixSocketPath: path, username: self.settings.monitorUser, password: password, database: self.settings.database)
        }
        // Our own timeout (below) decides and says so; postgres-nio's is only a backstop.
        configuration.options.connectTimeout = TimeAmount.nanoseconds(Int64(self.timeout.seconds * 2e9))
        let logger = self.logger
        let eventLoop = self.eventLoopGroup.next()
        let settings = configuration
        // The connect is cancellable: the timeout cancels it, which closes its channel.
        return try await self.withTimeout(onTimeout: {}) {
            try await PostgresConnection.connect(on: eventLoop, configuration: settings, id: 1, logger: logger)
        }
    }

    private func query(_ connection: PostgresConnection) async throws -> BackendReport.Status {
        let logger = self.logger
        // A query cannot be cancelled; closing the connection fails it, so a hung server cannot hang the probe.
        return try await self.withTimeout(onTimeout: { connection.close().whenComplete { _ in } }) {
            let rows = try await connection.query(PostgresQuery(unsafeSQL: Self.query), logger: logger)
            for try await (recovery, timeline, lsnText, lag, paused) in rows.decode((Bool, Int32, String, Double?, Bool).self) {
                guard let lsn = WALPosition(lsnText) else { throw ProbeError.unexpectedAnswer("LSN \"\(lsnText)\"") }
                return BackendReport.Status(
                    role: recovery ? .standby : .primary, timeline: UInt32(bitPattern: timeline), lsn: lsn,
                    replayLag: lag.map { .milliseconds(Int64(($0 * 1000).rounded())) }, replayPaused: paused)
            }
            throw ProbeError.unexpectedAnswer("no row")
        }
    }

    /// Runs `body`, failing with `ProbeError.timedOut` if it takes longer than `timeout`, then calls
    /// `onTimeout`. It does not wait for a body that ignores cancellation: postgres-nio never completes
    /// a query written to a connection the server has just closed, and that must not stop the probe.
    private func withTimeout<T: Sendable>(
        onTimeout: @escaping @Sendable () -> Void, _ body: @escaping @Sendable () async throws -> T
    ) async throws -> T {
        let timeout = self.timeout
        let race = TimeoutRace<T>()
        return try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { continuation in
                race.start(continuation)
                let work = Task {
                    do { race.finish(.success(try await body())) } catch { race.finish(.failure(error)) }
                }
                let timer = Task {
                    do { try await Task.sleep(for: timeout) } catch { return }
                    if race.finish(.failure(ProbeError.timedOut(timeout))) {
                        onTimeout()
                        work.cancel()
                    }
                }
                race.onFinish { timer.cancel() }
            }
        } onCancel: {
            race.finish(.failure(CancellationError()))
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
        case let error as PSQLError:
            if let info = error.serverInfo {
                let severity = info[.severity] ?? "ERROR"
                let state = info[.sqlState].map { " \($0)" } ?? ""
                return "\(target): \(severity)\(state): \(info[.message] ?? "no message") (as \(self.settings.monitorUser))"
            }
            if let underlying = error.underlying {
                return "\(target): \(Self.shortDescription(underlying))"
            }
            return "\(target): \(error.code)"
        default:
            return "\(target): \(Self.shortDescription(error))"
        }
    }

    /// NIO's connect errors repeat the address per attempt; the innermost error is what a person needs.
    private static func shortDescription(_ error: any Error) -> String {
        if let connection = error as? NIOConnectionError, let first = connection.connectionErrors.first {
            return Self.shortDescription(first.error)
        }
        if let io = error as? IOError { return String(cString: strerror(io.errnoCode)) }
        return "\(error)"
    }
}

/// The continuation of `withTimeout`, resumed exactly once by whichever finishes first: the work,
/// the timer or the caller's cancellation.
private final class TimeoutRace<T: Sendable>: Sendable {
    private enum State {
        case waiting(cleanups: [@Sendable () -> Void])
        case running(CheckedContinuation<T, any Error>, cleanups: [@Sendable () -> Void])
        /// Finished before the continuation existed (cancelled at once): delivered by `start`.
        case finishedEarly(Result<T, any Error>)
        case done
    }

    private let state = NIOLockedValueBox(State.waiting(cleanups: []))

    func start(_ continuation: CheckedContinuation<T, any Error>) {
        let early = self.state.withLockedValue { state -> Result<T, any Error>? in
            switch state {
            case .waiting(let cleanups):
                state = .running(continuation, cleanups: cleanups)
                return nil
            case .finishedEarly(let result):
                state = .done
                return result
            case .running, .done:
                preconditionFailure("TimeoutRace started twice")
            }
        }
        if let early { continuation.resume(with: early) }
    }

    /// Registers work to undo once finished; runs it at once if already finished.
    func onFinish(_ cleanup: @escaping @Sendable () -> Void) {
        let runNow = self.state.withLockedValue { state -> Bool in
            switch state {
            case .waiting(let cleanups):
                state = .waiting(cleanups: cleanups + [cleanup])
                return false
            case .running(let continuation, let cleanups):
                state = .running(continuation, cleanups: cleanups + [cleanup])
                return false
            case .finishedEarly, .done:
                return true
            }
        }
        if runNow { cleanup() }
    }

    /// Resumes the caller with `result` unless something already did; returns whether this call won.
    @discardableResult
    func finish(_ result: Result<T, any Error>) -> Bool {
        let won = self.state.withLockedValue { state -> (CheckedContinuation<T, any Error>?, [@Sendable () -> Void])? in
            switch state {
            case .waiting(let cleanups):
                state = .finishedEarly(result)
                return (nil, cleanups)
            case .running(let continuation, let cleanups):
                state = .done
                return (continuation, cleanups)
            case .finishedEarly, .done:
                return nil
            }
        }
        guard let (continuation, cleanups) = won else { return false }
        continuation?.resume(with: result)
        for cleanup in cleanups { cleanup() }
        return true
    }
}

/// Why a probe failed outside PostgreSQL's own errors.
enum ProbeError: Error, CustomStringConvertible {
    case timedOut(Duration)
    case passwordFile(String, String)
    case unexpectedAnswer(String)

    var description: String {
        switch self {
        case .timedOut(let timeout): "no answer within \(DurationText.format(timeout))"
        case .passwordFile(let path, let reason): "cannot read password_file \(path): \(reason)"
        case .unexpectedAnswer(let what): "unexpected probe answer: \(what)"
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
