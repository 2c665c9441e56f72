import Foundation
import Logging
import MeshSystemd
import MeshTestSupport
import NIOCore
import NIOPosix
import XCTest

/// MeshSystemd's pieces in this process, against real sockets and real event loops: what the
/// Notifier puts on the wire, the watchdog going quiet when a loop blocks, the readiness gate, and
/// which passed sockets are adopted or closed.
final class MeshSystemdUnitTests: XCTestCase {
    private var notify: NotifySocket?

    override func tearDown() {
        unsetenv("NOTIFY_SOCKET")
        self.notify?.close()
        self.notify = nil
        super.tearDown()
    }

    private func notifier() throws -> (Notifier, NotifySocket) {
        let socket = try NotifySocket()
        self.notify = socket
        setenv("NOTIFY_SOCKET", socket.path, 1)
        return (Notifier(logger: Logger(label: "test")), socket)
    }

    /// Each call is one datagram; RELOADING carries MONOTONIC_USEC from CLOCK_MONOTONIC; a status
    /// with a newline cannot smuggle in another assignment.
    func testNotifierMessages() throws {
        let (notifier, socket) = try self.notifier()
        XCTAssertTrue(notifier.isEnabled)
        let before = Notifier.monotonicMicroseconds()
        notifier.reloading(status: "reloading")
        notifier.ready(status: "1/1 peers up")
        notifier.status("line one\nREADY=1")
        notifier.watchdog()
        notifier.stopping()
        XCTAssertNotNil(socket.waitFor(timeout: .seconds(5)) { $0.has("STOPPING=1") }, socket.transcript)
        let texts = socket.messages.map(\.text)
        XCTAssertEqual(texts.count, 5, socket.transcript)
        guard texts.count == 5 else { return }
        let stamp = try XCTUnwrap(UInt64(socket.messages[0].fields["MONOTONIC_USEC"] ?? ""))
        XCTAssertTrue(stamp >= before && stamp <= socket.messages[0].monotonicMicroseconds)
        XCTAssertEqual(texts[0], "RELOADING=1\nMONOTONIC_USEC=\(stamp)\nSTATUS=reloading")
        XCTAssertEqual(texts[1], "READY=1\nSTATUS=1/1 peers up")
        XCTAssertEqual(texts[2], "STATUS=line one READY=1")
        XCTAssertEqual(texts[3], "WATCHDOG=1")
        XCTAssertEqual(texts[4], "STOPPING=1")
    }

    /// Pings every half period while all loops answer; none once a loop is blocked; again once
    /// it is released.
    func testWatchdogPingsOnlyWhileEveryLoopAnswers() async throws {
        let (notifier, socket) = try self.notifier()
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 2)
        let watchdog = Watchdog(
            period: .milliseconds(400),
            probe: LoopProbe(group: group),
            heartbeats: [],
            notifier: notifier,
            logger: Logger(label: "test")
        )
        let running = Task { await watchdog.run() }
        try await Task.sleep(for: .milliseconds(1000))
        let healthy = socket.messages.filter { $0.has("WATCHDOG=1") }.count
        XCTAssertTrue((3...7).contains(healthy), "\(healthy) pings in 1 s at a 200 ms interval")

        let release = DispatchSemaphore(value: 0)
        let blocked = DispatchSemaphore(value: 0)
        LoopProbe(group: group).loops[0].execute {
            blocked.signal()
            release.wait()
        }
        XCTAssertEqual(blocked.wait(timeout: .now() + 5), .success)
        let stalledAt = ContinuousClock.now
        try await Task.sleep(for: .milliseconds(1200))
        let late = socket.messages.filter { $0.has("WATCHDOG=1") && $0.at > stalledAt + .milliseconds(400) }
        XCTAssertEqual(late.count, 0, "no ping a period after a loop blocked\n\(socket.transcript)")

        release.signal()
        let releasedAt = ContinuousClock.now
        try await Task.sleep(for: .milliseconds(1000))
        XCTAssertGreaterThanOrEqual(socket.messages.filter { $0.has("WATCHDOG=1") && $0.at > releasedAt }.count, 2)
        running.cancel()
        await running.value
        try await group.shutdownGracefully()
    }

    /// A heartbeat that stops beating withholds the ping, like a stuck loop.
    func testStaleHeartbeatWithholdsPings() async throws {
        let (notifier, socket) = try self.notifier()
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let supervisor = Heartbeat(name: "tunnel supervisor")
        let watchdog = Watchdog(
            period: .milliseconds(400),
            probe: LoopProbe(group: group),
            heartbeats: [supervisor],
            notifier: notifier,
            logger: Logger(label: "test")
        )
        let running = Task { await watchdog.run() }
        try await Task.sleep(for: .milliseconds(500))
        XCTAssertEqual(socket.messages.count, 0, "no ping before the first tick")
        let ticking = Task {
            while !Task.isCancelled {
                supervisor.beat()
                try? await Task.sleep(for: .milliseconds(100))
            }
        }
        try await Task.sleep(for: .milliseconds(800))
        ticking.cancel()
        let stoppedAt = ContinuousClock.now
        XCTAssertGreaterThanOrEqual(socket.messages.count, 2, socket.transcript)
        try await Task.sleep(for: .milliseconds(1200))
        XCTAssertEqual(socket.messages.filter { $0.at > stoppedAt + .milliseconds(600) }.count, 0, socket.transcript)
        running.cancel()
        await running.value
        try await group.shutdownGracefully()
    }

    func testReadinessGateFiresOnceAfterEveryPart() {
        let fired = NSLock()
        nonisolated(unsafe) var count = 0
        let gate = ReadinessGate(parts: ["listeners", "control"]) { fired.withLock { count += 1 } }
        gate.started("listeners")
        gate.started("listeners")
        XCTAssertFalse(gate.isReady)
        XCTAssertEqual(fired.withLock { count }, 0)
        gate.started("control")
        gate.started("control")
        XCTAssertTrue(gate.isReady)
        XCTAssertEqual(fired.withLock { count }, 1)
    }

    /// Expected names are adopted; an unknown name and a second socket with a taken name are closed
    /// (nothing listens on their ports any more).
    func testAdoptKeepsExpectedNamesAndClosesTheRest() throws {
        let sockets = try (0..<4).map { _ in try TCPSocket.listen(host: "127.0.0.1", port: 0) }
        let ports = try sockets.map { try XCTUnwrap(PassedSockets.localAddress(of: $0.fd)?.port) }
        XCTAssertEqual(PassedSockets.localAddress(of: sockets[0].fd)?.ipAddress, "127.0.0.1")
        let passed = PassedSockets(sockets: [
            .init(fd: sockets[0].fd, name: "mesh"),
            .init(fd: sockets[1].fd, name: "forward-15432"),
            .init(fd: sockets[2].fd, name: "stray"),
            .init(fd: sockets[3].fd, name: "mesh"),
        ])
        let adopted = passed.adopt(expected: ["mesh", "forward-15432", "pg-rw"], logger: Logger(label: "test"))
        // adopt() closed these: their numbers may be reused, so they must not be closed again.
        sockets[2].forget()
        sockets[3].forget()
        XCTAssertEqual(adopted, ["mesh": sockets[0].fd, "forward-15432": sockets[1].fd])
        XCTAssertFalse(TCPSocket.isRefused(host: "127.0.0.1", port: ports[0]), "adopted socket still listens")
        XCTAssertFalse(TCPSocket.isRefused(host: "127.0.0.1", port: ports[1]), "adopted socket still listens")
        XCTAssertTrue(TCPSocket.isRefused(host: "127.0.0.1", port: ports[2]), "unknown name closed")
        XCTAssertTrue(TCPSocket.isRefused(host: "127.0.0.1", port: ports[3]), "second 'mesh' closed")
    }
}
