import Foundation
import Logging
import MeshBalancer
import MeshConfig
import MeshTestSupport
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import XCTest

/// The role probe against real PostgreSQL: a primary and a streaming standby made by the test.
final class RoleProbeTests: XCTestCase {
    var root: String?
    var clusters: [PostgresCluster] = []
    var probes: [Task<Void, Never>] = []
    let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)

    override func tearDown() async throws {
        // Probes first (each ends within its timeout), so none is left using the event loop or a server.
        for probe in self.probes { probe.cancel() }
        for probe in self.probes { await probe.value }
        for cluster in self.clusters { cluster.stop() }
        if let root { PostgresCluster.removeRoot(root) }
        try await self.group.shutdownGracefully()
    }

    /// Reports one probe has made, with bounded waits for the one a test expects.
    final class ReportLog: Sendable {
        private let reports = NIOLockedValueBox<[BackendReport]>([])

        func append(_ report: BackendReport) { self.reports.withLockedValue { $0.append(report) } }
        var all: [BackendReport] { self.reports.withLockedValue { $0 } }

        /// The first report after the ones already seen that satisfies `condition`, within `seconds`.
        func next(
            within seconds: Double = 10,
            file: StaticString = #filePath,
            line: UInt = #line,
            where condition: (BackendReport) -> Bool
        ) async throws -> BackendReport {
            let start = self.all.count
            let deadline = Date() + seconds
            while Date() < deadline {
                if let match = self.all.dropFirst(start).first(where: condition) { return match }
                try await Task.sleep(for: .milliseconds(25))
            }
            let last = self.all.last.map { "\($0.health)" } ?? "none"
            XCTFail("no matching report within \(seconds)s; last: \(last)", file: file, line: line)
            throw CancellationError()
        }
    }

    func startProbe(
        target: Endpoint,
        passwordFile: String? = nil,
        user: String = "meshmon",
        interval: Duration = .milliseconds(200)
    ) -> ReportLog {
        let log = ReportLog()
        let service = ServiceSettings(
            name: "postgres",
            on: ["db1": target],
            allow: .nodes(["app1"]),
            postgres: PostgresSettings(monitorUser: user, database: "postgres", passwordFile: passwordFile, probeInterval: interval)
        )
        let probe = RoleProbe(service: service, node: "db1", logger: Logger(label: "probe")) {
            log.append($0)
        }!
        self.probes.append(Task { await probe.run() })
        return log
    }

    func writePasswordFile(_ password: String) throws -> String {
        let path = self.root! + "/meshmon.password"
        try (password + "\n").write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    func testRolesLagPauseStopAndPromotion() async throws {
        let root = try PostgresCluster.makeRoot()
        self.root = root
        let primary = try PostgresCluster.primary(name: "db1", in: root, hba: ["host all meshmon 127.0.0.1/32 scram-sha-256"])
        self.clusters.append(primary)
        try primary.sql("CREATE ROLE meshmon LOGIN PASSWORD 'probe-secret'; GRANT pg_monitor TO meshmon")
        let standby = try primary.makeStandby(name: "db2", in: root)
        self.clusters.append(standby)
        let password = try self.writePasswordFile("probe-secret")

        let onPrimary = self.startProbe(target: .tcp(host: "127.0.0.1", port: primary.port), passwordFile: password)
        let onStandby = self.startProbe(target: .tcp(host: "127.0.0.1", port: standby.port), passwordFile: password)
        let overSocket = self.startProbe(target: .unix(path: standby.socketPath))

        // Roles, timelines and positions.
        try primary.sql("CREATE TABLE t(x int); INSERT INTO t VALUES (1)")
        let first = try await onPrimary.next { $0.status?.role == .primary }
        let primaryLSN = try XCTUnwrap(first.status?.lsn)
        XCTAssertEqual(first.status?.timeline, 1)
        XCTAssertNil(first.status?.replayLag)
        XCTAssertEqual(first.status?.replayPaused, false)
        XCTAssertGreaterThan(primaryLSN.value, 0)
        // Caught up past the INSERT, which was written after the base backup, so the standby can only
        // have it by streaming (the first primary report may predate the INSERT, and a standby that
        // replayed only its base backup has no lag to report yet).
        let written = try XCTUnwrap(WALPosition(try primary.sql("SELECT pg_current_wal_lsn()")))
        XCTAssertGreaterThanOrEqual(written, primaryLSN)
        let caughtUp = try await onStandby.next { $0.status?.role == .standby && $0.status!.lsn >= written }
        XCTAssertEqual(caughtUp.status?.timeline, 1)
        XCTAssertEqual(caughtUp.status?.replayLag, .zero, "caught up and streaming: no lag")
        XCTAssertEqual(caughtUp.status?.replayPaused, false)
        let viaSocket = try await overSocket.next { $0.status != nil }
        XCTAssertEqual(viaSocket.status?.role, .standby)

        // Reports count up within one run.
        let sequences = onPrimary.all.map(\.sequence)
        XCTAssertEqual(sequences, Array(1...UInt64(sequences.count)))
        XCTAssertEqual(Set(onPrimary.all.map(\.runID)).count, 1)

        // Paused replay: the flag, and lag that grows once the primary writes past it.
        try standby.sql("SELECT pg_wal_replay_pause()")
        try primary.sql("INSERT INTO t VALUES (2)")
        let paused = try await onStandby.next { ($0.status?.replayPaused ?? false) && ($0.status?.replayLag ?? .zero) > .milliseconds(300) }
        XCTAssertEqual(paused.status?.role, .standby)
        XCTAssertLessThan(try XCTUnwrap(paused.status?.replayLag), .seconds(30))
        try standby.sql("SELECT pg_wal_replay_resume()")
        _ = try await onStandby.next { $0.status?.replayPaused == false && $0.status?.replayLag == .zero }

        // The primary stops: down, with the reason and where.
        primary.stop()
        let down = try await onPrimary.next { if case .down = $0.health { true } else { false } }
        guard case .down(let error) = down.health else { return XCTFail("not down") }
        XCTAssertTrue(error.hasPrefix("127.0.0.1:\(primary.port): "), error)
        XCTAssertTrue(error.lowercased().contains("refused") || error.lowercased().contains("closed"), error)

        // Promotion: the standby reports primary on the next timeline.
        try standby.promote()
        let promoted = try await onStandby.next { $0.status?.role == .primary }
        XCTAssertEqual(promoted.status?.timeline, 2, standby.logTail)
        XCTAssertGreaterThanOrEqual(try XCTUnwrap(promoted.status?.lsn), primaryLSN)
    }

    func testWrongPasswordIsDownWithPostgresError() async throws {
        let root = try PostgresCluster.makeRoot()
        self.root = root
        let primary = try PostgresCluster.primary(name: "db1", in: root, hba: ["host all meshmon 127.0.0.1/32 scram-sha-256"])
        self.clusters.append(primary)
        try primary.sql("CREATE ROLE meshmon LOGIN PASSWORD 'right'; GRANT pg_monitor TO meshmon")

        let wrong = self.startProbe(target: .tcp(host: "127.0.0.1", port: primary.port), passwordFile: try self.writePasswordFile("wrong"))
        let report = try await wrong.next { _ in true }
        XCTAssertEqual(
            report.health,
            .down(error: "127.0.0.1:\(primary.port): FATAL 28P01: password authentication failed for user \"meshmon\" (as meshmon)")
        )

        let noSuchUser = self.startProbe(target: .tcp(host: "127.0.0.1", port: primary.port), user: "nobody")
        guard case .down(let error) = try await noSuchUser.next(where: { _ in true }).health else { return XCTFail("up as nobody") }
        XCTAssertTrue(error.contains("role \"nobody\" does not exist"), error)
    }

    func testNothingListeningIsDown() async throws {
        let port = try TCPSocket.freePort(host: "127.0.0.1")
        let log = self.startProbe(target: .tcp(host: "127.0.0.1", port: port))
        let report = try await log.next { _ in true }
        guard case .down(let error) = report.health else { return XCTFail("up with nothing listening") }
        XCTAssertTrue(error.hasPrefix("127.0.0.1:\(port): "), error)
        XCTAssertTrue(error.lowercased().contains("refused"), error)
        // It keeps probing (reconnecting) at its interval.
        let later = try await log.next { $0.sequence >= 3 }
        XCTAssertEqual(later.runID, report.runID)
    }

    func testUnreadablePasswordFileIsDown() async throws {
        let log = self.startProbe(
            target: .tcp(host: "127.0.0.1", port: try TCPSocket.freePort(host: "127.0.0.1")),
            passwordFile: "/nonexistent/meshmon.password"
        )
        guard case .down(let error) = try await log.next(where: { _ in true }).health else { return XCTFail("up") }
        XCTAssertTrue(error.contains("cannot read password_file /nonexistent/meshmon.password"), error)
    }

    /// A server that accepts and never answers (a hung PostgreSQL): the probe gives up after its timeout.
    func testSilentServerTimesOut() async throws {
        let silent = try await ServerBootstrap(group: self.group)
            .childChannelInitializer { $0.eventLoop.makeSucceededVoidFuture() }
            .bind(host: "127.0.0.1", port: 0).get()
        let port = try XCTUnwrap(silent.localAddress?.port)
        let started = Date()
        let log = self.startProbe(target: .tcp(host: "127.0.0.1", port: port), interval: .milliseconds(300))
        let report = try await log.next(within: 5) { _ in true }
        XCTAssertEqual(report.health, .down(error: "127.0.0.1:\(port): no answer within 1s"))
        XCTAssertLessThan(Date().timeIntervalSince(started), 3)
        for probe in self.probes { probe.cancel() }
        for probe in self.probes { await probe.value }
        try await silent.close()
    }
}
