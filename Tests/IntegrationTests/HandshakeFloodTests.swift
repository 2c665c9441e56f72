import Foundation
import MeshTestSupport
import NIOCore
import XCTest

#if canImport(Glibc)
import Glibc
#endif

/// Hostile input that needs no certificate and no protocol knowledge: connections that never say a
/// word, and a declared peer that opens streams without end. Neither may shut an honest peer out,
/// and neither may make meshd grow without bound.
final class HandshakeFloodTests: MeshTestCase {
    private static let floodSize = 2_000
    private static let pendingLimit = 64
    /// Short, so the held connections' ending is waited out in seconds, yet well above what a PING
    /// timer would take (dead_after 3 × ping_interval 1 s), so closing them early still shows.
    private static let handshakeTimeout: Duration = .seconds(10)

    /// 2,000 silent connections against b's mesh port, with only 64 handshake slots: a, started
    /// while they are held open, still gets its tunnel up well within the handshake timeout (the
    /// newest connection evicts the oldest silent one), and meshd closes every silent connection,
    /// by eviction or at the handshake timeout, with a bounded number of log lines.
    func testSilentFloodDoesNotShutOutAnHonestPeer() throws {
        try Self.raiseOpenFileLimit(atLeast: Self.floodSize + 1_000)
        let mesh = try self.makeMesh(
            range: 100,
            nodes: ["a", "b"],
            tunnel: .init(
                pingInterval: "1s",
                deadAfter: 3,
                backoffMax: "1s",
                shutdownGrace: "1s",
                handshakeTimeout: "\(Self.handshakeTimeout.components.seconds)s"
            )
        )
        let config = try Self.writeConfig(mesh, tunnel: ["max_pending_handshakes": Self.pendingLimit])
        // a sorts lower, so a dials b: b's mesh port is the one that must stay open to honest peers.
        let b = try mesh.start("b", config: config)
        XCTAssertNotNil(b.waitForLog(containing: "listening on", timeout: .seconds(15)), "b did not start\n\(b.logTail())")
        XCTAssertNotNil(b.waitForLog(containing: "open file limit", timeout: .seconds(1)), "meshd logs its fd limit\n\(b.logTail())")
        let rssBefore = b.residentBytes() ?? 0
        let mark = b.logMark()

        let target = mesh.meshAddress("b")
        let floodStart = ContinuousClock.now
        var flood: [TCPSocket] = []
        for index in 0..<Self.floodSize {
            do {
                flood.append(try TCPSocket.connect(host: target.host, port: target.port, timeout: .seconds(5)))
            } catch {
                XCTFail("flood connection \(index) failed: \(error)")
                break
            }
        }
        let floodEnd = ContinuousClock.now
        defer { for socket in flood { socket.close() } }
        let floodOpened = flood.count
        print("flood: \(floodOpened) silent connections opened in \((floodEnd - floodStart).milliseconds) ms")

        // meshd accepts the queued flood at its own pace, evicting as it goes: wait until only the
        // last `pendingLimit` are left. Those hold every slot, and keep them for the whole handshake
        // timeout unless a newer connection evicts them.
        var open = flood
        var closedEarly = 0
        var sentBytes = 0
        Self.collectClosed(&open, until: ContinuousClock.now + .seconds(60), stopAt: Self.pendingLimit) {
            closedEarly += 1
        } sent: {
            sentBytes += 1
        }
        let drained = ContinuousClock.now
        print(
            "flood: \(closedEarly) evicted while meshd accepted the flood, \(open.count) left holding the slots after \((drained - floodEnd).milliseconds) ms more"
        )

        let aStart = ContinuousClock.now
        let a = try mesh.start("a", config: config)
        let up = a.waitForLog(containing: "peer b up", timeout: .seconds(10)) != nil
        let honestUp = ContinuousClock.now - aStart
        XCTAssertTrue(up, "a's tunnel to b did not come up within 10 s while the flood held every slot\n\(a.logTail())\n\(b.logTail())")
        // Still held: the flood's connections were mid-handshake the whole time (one evicted for a).
        var stillOpen = open
        var closedForHonest = 0
        Self.collectClosed(&stillOpen, until: ContinuousClock.now + .milliseconds(300), stopAt: 0) {
            closedForHonest += 1
        } sent: {
            sentBytes += 1
        }
        XCTAssertGreaterThanOrEqual(
            stillOpen.count,
            Self.pendingLimit / 2,
            "the flood must still hold the slots when the honest peer gets in"
        )
        print(
            "honest peer: a's tunnel to b up \(honestUp.milliseconds) ms after a started, with \(stillOpen.count) silent connections still mid-handshake"
        )

        // The rest end at the handshake timeout.
        var closedLate = 0
        var firstLate: ContinuousClock.Instant?
        open = stillOpen
        Self.collectClosed(&open, until: drained + Self.handshakeTimeout + .seconds(15), stopAt: 0) {
            closedLate += 1
            if firstLate == nil { firstLate = .now }
        } sent: {
            sentBytes += 1
        }
        // Accepted before `drained`, so their timeout is due before drained + timeout; none may go
        // much earlier (a PING timer, say, must not stand in for the handshake timeout).
        let lateAfter = (firstLate ?? drained) - drained
        // They were accepted in the drain's last moments, so they end close to a whole timeout later.
        XCTAssertGreaterThan(
            lateAfter,
            Self.handshakeTimeout - .seconds(4),
            "the held connections were closed before their handshake timeout"
        )
        print(
            "held connections: first closed \(lateAfter.milliseconds) ms after the flood was accepted (handshake_timeout \(Self.handshakeTimeout.components.seconds) s)"
        )
        closedEarly += closedForHonest
        let closed = floodOpened - open.count
        let rssAfter = b.residentBytes() ?? 0
        XCTAssertEqual(open.count, 0, "\(open.count) silent connections were still open 15 s past the handshake timeout")
        XCTAssertGreaterThan(closedLate, 0, "the pending silent connections must be closed by the handshake timeout")
        XCTAssertLessThanOrEqual(closedLate, Self.pendingLimit, "no more than the pending limit can wait for the timeout")
        XCTAssertTrue(b.isRunning && a.isRunning, "both meshd processes survive the flood")
        XCTAssertNotNil(b.waitForLog(containing: "peer a up", after: mark, timeout: .seconds(1)), "b has the tunnel too\n\(b.logTail())")

        // The log says what happened without a line per connection.
        let floodLog = b.log(after: mark).split(separator: "\n")
        let rejectedLines = floodLog.filter { $0.contains("rejected connection:") }.count
        let summaries = floodLog.filter { $0.contains("more rejected connections in the last") }
        XCTAssertFalse(summaries.isEmpty, "b summarises the rejected connections\n\(b.logTail())")
        XCTAssertLessThan(rejectedLines + summaries.count, 100, "one line per rejected connection is a log flood")
        XCTAssertTrue(floodLog.contains { $0.contains("evicted") }, "evictions are named in the log\n\(b.logTail())")
        print(
            "b's log: \(rejectedLines) rejected-connection lines and \(summaries.count) summaries for \(floodOpened) connections; first summary: \(summaries.first ?? "-")"
        )
        print(
            "RESULT flood connections=\(floodOpened) pending_limit=\(Self.pendingLimit) handshake_timeout=\(Self.handshakeTimeout.components.seconds)s honest_up_ms=\(honestUp.milliseconds) closed=\(closed)/\(floodOpened) evicted_early=\(closedEarly) closed_at_timeout=\(closedLate) bytes_seen=\(sentBytes) log_lines=\(rejectedLines + summaries.count) rss_before_mib=\(rssBefore >> 20) rss_after_mib=\(rssAfter >> 20)"
        )
    }

    /// app1 opens streams through its forward without end; db1 serves at most max_streams_per_peer
    /// of them at once. Every stream beyond is refused at once (the client sees a reset), db1 logs the
    /// refusal with the peer and the limit, memory stays flat from round to round, and once the held
    /// streams close new ones are served again.
    func testStreamsBeyondThePerPeerLimitAreRefused() throws {
        let limit = 8
        let mesh = try self.makeMesh(range: 101, nodes: ["app1", "db1"])
        let forward = try self.addEchoForward(mesh)
        let config = try Self.writeConfig(mesh, tunnel: ["max_streams_per_peer": limit])
        let app1 = try mesh.start("app1", config: config)
        let db1 = try mesh.start("db1", config: config)
        guard mesh.waitUp(app1, peer: "db1") else { return }
        XCTAssertNotNil(self.waitForEcho(host: forward.host, port: forward.port, timeout: .seconds(10)), "the forward works")

        // Fill the limit with streams that stay open (each proven live by one echoed byte).
        var held: [TCPSocket] = []
        defer { for socket in held { socket.close() } }
        for index in 0..<limit {
            // The probe streams above may still count for a moment after their client saw EOF: retry.
            for attempt in 1...20 {
                // A refusal can reset the connection before connect() returns: that is a retry too.
                let socket = try? TCPSocket.connect(host: forward.host, port: forward.port)
                try? socket?.send([UInt8(index)])
                if let socket, Self.read(socket, count: 1, timeout: .seconds(5)) == [UInt8(index)] {
                    held.append(socket)
                    break
                }
                socket?.close()
                XCTAssertLessThan(attempt, 20, "held stream \(index) never echoed")
                Thread.sleep(forTimeInterval: 0.1)
            }
        }
        XCTAssertEqual(held.count, limit)

        let mark = db1.logMark()
        let rounds = 3
        let perRound = 200
        var rss: [[String: Int]] = []
        var outcomes: [String: Int] = [:]
        let started = ContinuousClock.now
        for _ in 0..<rounds {
            for _ in 0..<perRound {
                let socket: TCPSocket
                do {
                    socket = try TCPSocket.connect(host: forward.host, port: forward.port)
                } catch let failure as TCPSocket.Failure where failure.code == ECONNRESET {
                    // meshd's reset arrived before connect() returned: refused all the same.
                    outcomes["\(StreamEnd.reset)", default: 0] += 1
                    continue
                }
                do {
                    try socket.send(Array(repeating: 7, count: 64))
                } catch let failure as TCPSocket.Failure where failure.code == ECONNRESET || failure.code == EPIPE {
                    // The reset came first and send() took its error: a read would now see only 0 (EOF).
                    socket.close()
                    outcomes["\(StreamEnd.reset)", default: 0] += 1
                    continue
                }
                let result = socket.readAll(timeout: .seconds(5))
                socket.close()
                XCTAssertTrue(result.data.isEmpty, "a refused stream must deliver nothing")
                outcomes["\(result.end)", default: 0] += 1
            }
            rss.append(Dictionary(uniqueKeysWithValues: [app1, db1].map { ($0.label, $0.residentBytes() ?? 0) }))
        }
        let elapsed = ContinuousClock.now - started
        let refused = (outcomes["\(StreamEnd.reset)"] ?? 0)
        XCTAssertEqual(refused, rounds * perRound, "every stream beyond the limit is reset for its client: \(outcomes)")
        let line = db1.waitForLog(containing: ["stream refused", "app1", "429", "max_streams_per_peer"], after: mark, timeout: .seconds(5))
        XCTAssertNotNil(line, "db1 logs the refusal naming the peer and the limit\n\(db1.logTail())")
        for node in ["app1", "db1"] {
            let first = rss[0][node] ?? 0
            let last = rss[rounds - 1][node] ?? 0
            XCTAssertLessThan(last - first, 16 << 20, "\(node)'s RSS grew from \(first >> 20) MiB to \(last >> 20) MiB over the rounds")
        }
        let refusedLines = db1.log(after: mark).split(separator: "\n").filter { $0.contains("stream refused") }.count

        // The held streams still work, and once they close the limit frees up.
        for (index, socket) in held.enumerated() {
            try socket.send([UInt8(index + 100)])
            XCTAssertEqual(Self.read(socket, count: 1, timeout: .seconds(5)), [UInt8(index + 100)], "held stream \(index) still echoes")
            socket.close()
        }
        held = []
        XCTAssertNotNil(
            self.waitForEcho(host: forward.host, port: forward.port, timeout: .seconds(10)),
            "new streams are served once the held ones closed"
        )
        print("stream limit: db1 logged: \(line ?? "-")")
        print(
            "RESULT streams limit=\(limit) held=\(limit) refused=\(refused)/\(rounds * perRound) outcomes=\(outcomes) refusal_ms_avg=\(elapsed.milliseconds / (rounds * perRound)) refused_log_lines=\(refusedLines) rss_mib_by_round=\(rss.map { $0.mapValues { $0 >> 20 } })"
        )
    }

    // MARK: Helpers

    /// Polls `open` and removes each socket meshd closed (EOF or reset), calling `closed` for it,
    /// until at most `stopAt` are left or `deadline` passes.
    private static func collectClosed(
        _ open: inout [TCPSocket],
        until deadline: ContinuousClock.Instant,
        stopAt: Int,
        closed: () -> Void,
        sent: () -> Void
    ) {
        while open.count > stopAt, ContinuousClock.now < deadline {
            var fds = open.map { pollfd(fd: $0.fd, events: Int16(POLLIN), revents: 0) }
            guard poll(&fds, nfds_t(fds.count), 100) > 0 else { continue }
            var still: [TCPSocket] = []
            for (socket, pfd) in zip(open, fds) {
                guard pfd.revents != 0 else {
                    still.append(socket)
                    continue
                }
                var byte: UInt8 = 0
                let n = recv(socket.fd, &byte, 1, Int32(MSG_DONTWAIT))
                if n > 0 {
                    sent()  // a TLS alert, say; keep reading until the end
                    still.append(socket)
                } else if n == 0 || errno == ECONNRESET {
                    closed()
                    socket.close()
                } else {
                    still.append(socket)
                }
            }
            open = still
        }
    }

    /// Writes the mesh's config with extra keys merged into "tunnel" (keys the shared MeshFile does not model).
    private static func writeConfig(_ mesh: TestMesh, tunnel extra: [String: Any]) throws -> URL {
        let url = try mesh.writeConfig()
        var object = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(contentsOf: url)) as? [String: Any])
        var tunnel = (object["tunnel"] as? [String: Any]) ?? [:]
        for (key, value) in extra { tunnel[key] = value }
        object["tunnel"] = tunnel
        let data = try JSONSerialization.data(withJSONObject: object, options: [.prettyPrinted, .sortedKeys])
        try data.write(to: url, options: .atomic)
        return url
    }

    /// Raises this test process's soft RLIMIT_NOFILE to `atLeast` (bounded by the hard limit); skips if it cannot.
    private static func raiseOpenFileLimit(atLeast wanted: Int) throws {
        var limit = rlimit()
        guard getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit) == 0 else { throw XCTSkip("getrlimit failed") }
        guard limit.rlim_cur < rlim_t(wanted) else { return }
        guard limit.rlim_max >= rlim_t(wanted) else {
            throw XCTSkip("the hard open-file limit \(limit.rlim_max) is below the \(wanted) this test needs")
        }
        limit.rlim_cur = rlim_t(wanted)
        guard setrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit) == 0 else {
            throw XCTSkip("setrlimit(RLIMIT_NOFILE, \(wanted)) failed: \(String(cString: strerror(errno)))")
        }
    }

    /// Exactly `count` bytes, or what arrived before EOF, an error or the deadline.
    private static func read(_ socket: TCPSocket, count: Int, timeout: Duration) -> [UInt8] {
        let deadline = ContinuousClock.now + timeout
        var data: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: count)
        while data.count < count, ContinuousClock.now < deadline {
            var pfd = pollfd(fd: socket.fd, events: Int16(POLLIN), revents: 0)
            guard poll(&pfd, 1, 100) > 0 else { continue }
            let n = chunk.withUnsafeMutableBytes { recv(socket.fd, $0.baseAddress, count - data.count, 0) }
            guard n > 0 else { break }
            data += chunk[0..<n]
        }
        return data
    }
}
