import Foundation
import MeshTestSupport
import NIOCore
import XCTest

/// Certificate rotation (README, "Certificate rotation") with real meshd processes, certificates
/// minutes long from `meshctl pki issue --valid-for`, and real clients: no tunnel outlives what
/// authenticated it, and replacing a certificate or CA cuts nothing.
final class CertificateRotationTests: MeshTestCase {
    /// The reload test's certificates: many times what the test takes, because certificate dates
    /// follow the wall clock while the test's waits follow the monotonic one. Under the whole suite
    /// the wall clock once moved ~4 minutes past what every process saw (no log line from either
    /// meshd; pgbench measured its 36 s run and exited 4 min 17 s of wall time after starting), and
    /// 3-minute certificates expired mid-test.
    static let lifetime = "15m"

    /// app1 dials db1. While a checksummed echo stream each way (app1 -> echo@db1, and db1 ->
    /// echo@app1, which travels as a reverse stream) and two pgbench runs (one on long-lived
    /// connections, one with a new connection per transaction) go on through app1 -> postgres@db1:
    /// a new certificate for the dialer, then for the acceptor, then a new CA added to both bundles
    /// and certificates from it, each applied with a reload. Every reload renews the tunnel (the
    /// acceptor by asking the dialer), the old tunnel drains, nothing is reset; then the old CA is
    /// removed, which renews the tunnel once more while a stream opened since goes on.
    func testReloadedCertificatesAndCARenewTheTunnelWithoutACut() throws {
        let bin: String
        do { bin = try PostgresCluster.binDirectory() } catch { throw XCTSkip("\(error)") }
        let mesh = try self.makeMesh(
            range: 140,
            nodes: ["app1", "db1"],
            tunnel: .init(pingInterval: "1s", deadAfter: 3, backoffMax: "1s", shutdownGrace: "2s", reauthenticateBefore: "20s")
        )
        let pki = mesh.pki
        // Trust and revocation as bundles, so a CA can be added and removed by editing them.
        mesh.file.tls.ca = "pki/trust.pem"
        mesh.file.tls.crl = "pki/crls.pem"
        try self.concatenate([pki.caPEM], into: pki.dir.appendingPathComponent("trust.pem"))
        try self.concatenate([pki.crlPEM], into: pki.dir.appendingPathComponent("crls.pem"))
        for node in ["app1", "db1"] { try self.issue(node, from: pki, validFor: Self.lifetime) }

        let root = try PostgresCluster.makeRoot()
        self.addCleanup { PostgresCluster.removeRoot(root) }
        let postgres = try PostgresCluster.primary(name: "db1", in: root)
        self.addCleanup { postgres.stop() }
        let echoOnDB1 = try self.makeEchoServer()
        let echoOnApp1 = try self.makeEchoServer()
        mesh.addService("postgres", on: ["db1": "127.0.0.1:\(postgres.port)"], allow: ["app1"])
        mesh.addService("echo", on: ["db1": echoOnDB1.endpoint], allow: ["app1"])
        mesh.addService("echoa", on: ["app1": echoOnApp1.endpoint], allow: ["db1"])
        let pg = try mesh.addForward(on: "app1", to: "postgres@db1")
        let toDB1 = try mesh.addForward(on: "app1", to: "echo@db1")
        let toApp1 = try mesh.addForward(on: "db1", to: "echoa@app1")

        let app1 = try mesh.start("app1")
        let db1 = try mesh.start("db1")
        guard mesh.waitUp(app1, peer: "db1"), mesh.waitUp(db1, peer: "app1") else { return }
        let target = ["-h", pg.host, "-p", "\(pg.port)", "-U", PostgresCluster.superuser, "postgres"]
        let initialize = try Command.run(bin + "/pgbench", ["-i", "-s", "1", "-q"] + target, timeout: .seconds(60))
        XCTAssertEqual(initialize.status, 0, "pgbench -i through the tunnel: \(initialize.output)\n\(mesh.allLogs())")

        let pulses = [
            ("app1 -> echo@db1", try PulseClient(group: self.group, host: toDB1.host, port: toDB1.port)),
            ("db1 -> echoa@app1 (reverse)", try PulseClient(group: self.group, host: toApp1.host, port: toApp1.port)),
        ]
        for (_, pulse) in pulses { self.addCleanup { pulse.close() } }
        let benchSeconds = 36
        let longConnections = try mesh.spawn(
            label: "pgbench",
            executable: bin + "/pgbench",
            arguments: ["-n", "-c", "2", "-j", "2", "-T", "\(benchSeconds)", "-S"] + target
        )
        let newConnections = try mesh.spawn(
            label: "pgbench-C",
            executable: bin + "/pgbench",
            arguments: ["-n", "-C", "-c", "2", "-j", "2", "-T", "\(benchSeconds)"] + target
        )
        let benchStart = ContinuousClock.now
        for (name, pulse) in pulses {
            XCTAssertNotNil(self.pollUntil(timeout: .seconds(5)) { pulse.snapshot().bytesEchoed > 0 }, "\(name) never echoed")
        }

        /// One reload step: `prepare` changes files, `nodes` reload, and the tunnel is renewed:
        /// a newer authentication time on both ends, the old tunnel draining, nothing down.
        var authenticated = try XCTUnwrap(self.authenticatedAt("db1", seenBy: "app1", in: mesh))
        /// The streams each step checks: open, echoing, intact.
        var live = pulses
        var marks = ["app1": app1.logMark(), "db1": db1.logMark()]
        func rotate(_ step: String, reload nodes: [String], line: UInt = #line, prepare: () throws -> Void) throws {
            // authenticated_at has whole seconds: start in a later second than the last renewal.
            Thread.sleep(forTimeInterval: 1.1)
            marks = ["app1": app1.logMark(), "db1": db1.logMark()]
            try prepare()
            for node in nodes {
                let result = try mesh.meshctl(node, ["reload"])
                XCTAssertEqual(result.status, 0, "\(step): meshctl reload on \(node): \(result.output)", line: line)
            }
            let renewed = self.pollUntil(timeout: .seconds(10)) {
                guard let seen = self.authenticatedAt("db1", seenBy: "app1", in: mesh) else { return false }
                return seen > authenticated
            }
            XCTAssertNotNil(renewed, "\(step): app1's tunnel to db1 was not re-authenticated\n\(mesh.allLogs())", line: line)
            XCTAssertNotNil(
                app1.waitForLog(containing: "peer db1 re-authenticated", after: marks["app1"]!, timeout: .seconds(5)),
                "\(step): app1 logs the renewal",
                line: line
            )
            XCTAssertNotNil(
                db1.waitForLog(containing: "peer app1 re-authenticated", after: marks["db1"]!, timeout: .seconds(5)),
                "\(step): db1 logs the renewal",
                line: line
            )
            // The echo streams are still on an older tunnel, so one drains on each end.
            for (node, peer) in [("app1", "db1"), ("db1", "app1")] {
                let draining = mesh.peer(peer, seenBy: node)?["draining_tunnels"] as? Int ?? 0
                XCTAssertGreaterThanOrEqual(draining, 1, "\(step): \(node) shows the draining tunnel", line: line)
            }
            for (process, peer) in [(app1, "db1"), (db1, "app1")] {
                XCTAssertNil(
                    process.waitForLog(containing: "peer \(peer) down", after: marks[process.label]!, timeout: .zero),
                    "\(step): \(process.label)'s peer went down\n\(process.log(after: marks[process.label]!))",
                    line: line
                )
            }
            for (name, pulse) in live {
                let before = pulse.snapshot().bytesEchoed
                XCTAssertNotNil(
                    self.pollUntil(timeout: .seconds(3)) { pulse.snapshot().bytesEchoed > before },
                    "\(step): \(name) stopped echoing",
                    line: line
                )
                let now = pulse.snapshot()
                XCTAssertTrue(now.isOpen, "\(step): \(name) ended: \(now.end.map { "\($0)" } ?? "-")", line: line)
                XCTAssertNil(now.mismatchAt, "\(step): \(name) echo differs at byte \(now.mismatchAt ?? -1)", line: line)
            }
            authenticated = self.authenticatedAt("db1", seenBy: "app1", in: mesh) ?? authenticated
        }

        // The dialer's certificate: app1 dials a fresh tunnel by itself.
        try rotate("app1's new certificate", reload: ["app1"]) { try self.issue("app1", from: pki, validFor: Self.lifetime) }
        XCTAssertNil(
            app1.waitForLog(containing: "asked for a fresh tunnel", after: marks["app1"]!, timeout: .zero),
            "the dialer renewed on its own"
        )
        // The acceptor's certificate: db1 asks app1 over the control stream.
        try rotate("db1's new certificate", reload: ["db1"]) { try self.issue("db1", from: pki, validFor: Self.lifetime) }
        XCTAssertNotNil(
            app1.waitForLog(containing: "db1 asked for a fresh tunnel", after: marks["app1"]!, timeout: .seconds(1)),
            "the acceptor asked the dialer"
        )
        let peersText = try mesh.meshctl("app1", ["peers"]).stdout
        XCTAssertTrue(peersText.contains("AUTHENTICATED") && peersText.contains("draining"), peersText)
        print("meshctl peers on app1 after two renewals:\n\(peersText)")

        // A CA rotation: a second CA joins both bundles, then both nodes get certificates from it.
        let second = try TestPKI(mesh: pki.mesh, dir: mesh.root.appendingPathComponent("pki2"))
        try rotate("a second CA in both bundles", reload: ["app1", "db1"]) {
            try self.concatenate([pki.caPEM, second.caPEM], into: pki.dir.appendingPathComponent("trust.pem"))
            try self.concatenate([pki.crlPEM, second.crlPEM], into: pki.dir.appendingPathComponent("crls.pem"))
        }
        try rotate("certificates from the second CA", reload: ["app1", "db1"]) {
            for node in ["app1", "db1"] {
                try self.issue(node, from: second, validFor: Self.lifetime)
                for file in [second.cert(node), second.key(node)] {
                    let destination = pki.dir.appendingPathComponent(file.lastPathComponent)
                    try? FileManager.default.removeItem(at: destination)
                    try FileManager.default.copyItem(at: file, to: destination)
                }
            }
        }

        // The clients end: every byte came back intact before a clean EOF, and pgbench had no error.
        for (name, pulse) in pulses {
            let end = pulse.finish(timeout: .seconds(10))
            XCTAssertEqual(end?.end, .eof, "\(name) ended \(end?.end.map { "\($0)" } ?? "not at all") instead of a clean EOF")
            XCTAssertNil(end?.mismatchAt, "\(name): echo differs at byte \(end?.mismatchAt ?? -1)")
            XCTAssertEqual(end?.bytesEchoed, end?.bytesSent, "\(name): every byte sent came back")
            print("\(name): \(end?.bytesEchoed ?? 0) bytes echoed across 4 renewals, slowest echo \(end?.maxLatency.milliseconds ?? -1) ms")
        }
        for bench in [longConnections, newConnections] {
            let remaining = Duration.seconds(benchSeconds + 30) - (ContinuousClock.now - benchStart)
            // pgbench exits 2 when a client aborted (a connection cut or refused), which its
            // "failed transactions" count leaves out: the meshd logs say which stream and why.
            XCTAssertEqual(bench.waitForExit(timeout: remaining), 0, "\(bench.label) failed:\n\(bench.log())\n\(mesh.allLogs(lines: 200))")
            XCTAssertTrue(bench.log().contains("number of failed transactions: 0"), "\(bench.label):\n\(bench.log())")
            print("\(bench.label) through the renewals:\n\(bench.log())")
        }
        // With their streams finished, the old tunnels closed with GOAWAY, none reset.
        XCTAssertNotNil(
            self.pollUntil(timeout: .seconds(5)) {
                (mesh.peer("db1", seenBy: "app1")?["draining_tunnels"] as? Int) == 0
                    && (mesh.peer("app1", seenBy: "db1")?["draining_tunnels"] as? Int) == 0
            },
            "the old tunnels closed once their streams finished\n\(mesh.allLogs())"
        )
        let drained = db1.log().components(separatedBy: "\n").filter { $0.contains("previous tunnel to app1 drained") }
        XCTAssertGreaterThanOrEqual(drained.count, 1, "db1 logs the drained tunnels' GOAWAY\n\(db1.logTail())")
        XCTAssertTrue(drained.allSatisfy { $0.contains(" 0 reset") }, "no stream on a draining tunnel was reset: \(drained)")
        XCTAssertTrue(app1.log().contains("previous tunnel to db1 closed after draining"), app1.logTail())
        XCTAssertFalse(app1.log().contains("closed while draining"), app1.logTail())

        // The old CA leaves the bundles once nothing it issued is in use: the tunnel (verified
        // through the second CA by now) is renewed once more, and a stream opened since goes on.
        let late = try PulseClient(group: self.group, host: toDB1.host, port: toDB1.port)
        self.addCleanup { late.close() }
        XCTAssertNotNil(self.pollUntil(timeout: .seconds(5)) { late.snapshot().bytesEchoed > 0 }, "a new stream echoes")
        live = [("app1 -> echo@db1, opened after the CA rotation", late)]
        try rotate("the first CA removed", reload: ["app1", "db1"]) {
            try self.concatenate([second.caPEM], into: pki.dir.appendingPathComponent("trust.pem"))
            try self.concatenate([second.crlPEM], into: pki.dir.appendingPathComponent("crls.pem"))
        }
        let lateEnd = late.finish(timeout: .seconds(10))
        XCTAssertEqual(lateEnd?.end, .eof, "a stream opened after the CA rotation outlives the old CA's removal")
        XCTAssertEqual(lateEnd?.bytesEchoed, lateEnd?.bytesSent)
        print("rotation test: \(ContinuousClock.now - benchStart) from the first client to the end")
    }

    /// Certificates 40 s long and no new ones: each tunnel renews ahead of the end by itself, on the
    /// side whose `tunnel.reauthenticate_before` comes first (app1 -> db1: the dialer app1, 25 s
    /// ahead; db1 -> db2: the acceptor db2, 25 s ahead, asks the dialer db1, whose own 5 s are
    /// later), without a cut. The fresh tunnels carry the same certificates, so meshctl peers and
    /// the metrics say re-authentication is failing; at notAfter every tunnel is closed, its
    /// streams reset (never a clean EOF), and the peers show why.
    func testTunnelsRenewAheadOfExpiryAndCloseAtNotAfterWithoutANewCertificate() throws {
        let mesh = try self.makeMesh(
            range: 141,
            nodes: ["app1", "db1", "db2"],
            tunnel: .init(pingInterval: "1s", deadAfter: 3, backoffMax: "1s", shutdownGrace: "2s", reauthenticateBefore: "25s")
        )
        let echoOnDB1 = try self.makeEchoServer()
        let echoOnDB2 = try self.makeEchoServer()
        mesh.addService("echo1", on: ["db1": echoOnDB1.endpoint], allow: ["app1"])
        mesh.addService("echo2", on: ["db2": echoOnDB2.endpoint], allow: ["db1"])
        let toDB1 = try mesh.addForward(on: "app1", to: "echo1@db1")
        let toDB2 = try mesh.addForward(on: "db1", to: "echo2@db2")
        let common = try mesh.writeConfig()
        var late = mesh.file
        late.tunnel?.reauthenticateBefore = "5s"
        let db1Config = try mesh.writeConfig(late, name: "mesh-db1.json")

        let issued = Date()
        for node in ["app1", "db1", "db2"] { try self.issue(node, from: mesh.pki, validFor: "40s") }
        let notAfter = issued.addingTimeInterval(40)
        let app1 = try mesh.start("app1", config: common)
        let db1 = try mesh.start("db1", config: db1Config)
        let db2 = try mesh.start("db2", config: common)
        guard mesh.waitUp(app1, peer: "db1"), mesh.waitUp(db1, peer: "db2"), mesh.waitUp(db2, peer: "app1") else { return }
        let pulses = [
            ("app1 -> echo1@db1", try PulseClient(group: self.group, host: toDB1.host, port: toDB1.port)),
            ("db1 -> echo2@db2", try PulseClient(group: self.group, host: toDB2.host, port: toDB2.port)),
        ]
        for (_, pulse) in pulses { self.addCleanup { pulse.close() } }

        // Renewals at notAfter - 25 s (app1's tunnels) and about notAfter - 23 s (db2's ask).
        let renewedBy = notAfter.addingTimeInterval(-15)
        let pairs = [("app1", "db1"), ("db1", "db2"), ("app1", "db2")]
        let renewed = self.pollUntil(timeout: .seconds(Int64(max(1, renewedBy.timeIntervalSinceNow)))) {
            pairs.allSatisfy { node, peer in (mesh.peer(peer, seenBy: node)?["reauthentications"] as? Int ?? 0) >= 1 }
        }
        XCTAssertNotNil(renewed, "every tunnel renewed ahead of its certificates' end\n\(mesh.allLogs())")
        XCTAssertLessThan(Date(), notAfter.addingTimeInterval(-5), "the renewals came well ahead of notAfter")
        XCTAssertNotNil(db1.waitForLog(containing: "db2 asked for a fresh tunnel", timeout: .zero), "db2, the acceptor, asked db1")
        XCTAssertNil(app1.waitForLog(containing: "asked for a fresh tunnel", timeout: .zero), "app1 renewed before anyone asked")
        for (name, pulse) in pulses {
            let now = pulse.snapshot()
            XCTAssertTrue(now.isOpen && now.mismatchAt == nil, "\(name) after the renewal: \(now)")
        }
        // Nothing newer was presented: the peers say so, and when the tunnel will close.
        let stuck = try XCTUnwrap(mesh.peer("db1", seenBy: "app1"))
        XCTAssertTrue(stuck["reauthenticate_at"] is NSNull, "\(stuck)")
        XCTAssertTrue((stuck["reauthentication_error"] as? String ?? "").contains("neither side has a newer one"), "\(stuck)")
        let credentialsEnd = (stuck["credentials_not_after"] as? String).flatMap { ISO8601DateFormatter().date(from: $0) }
        XCTAssertEqual(credentialsEnd?.timeIntervalSince1970 ?? 0, notAfter.timeIntervalSince1970, accuracy: 2, "\(stuck)")
        let metrics = try Command.run(
            "curl",
            ["-s", "--unix-socket", mesh.controlPath("app1"), "http://meshd/metrics"],
            timeout: .seconds(10)
        )
        let exposition = try PrometheusText(metrics.stdout)
        XCTAssertEqual(exposition.value("meshd_tunnel_reauthentication_failing", ["peer": "db1"]), 1, metrics.stdout)
        XCTAssertEqual(
            exposition.value("meshd_tunnel_credentials_expiry_timestamp_seconds", ["peer": "db1"]) ?? 0,
            credentialsEnd?.timeIntervalSince1970 ?? -1,
            accuracy: 1
        )
        XCTAssertEqual(exposition.value("meshd_tunnels_draining", ["peer": "db1"]), 1, "the pulse keeps the old tunnel draining")

        // At notAfter: closed, streams reset, and said so.
        for (name, pulse) in pulses {
            let end = pulse.waitForEnd(timeout: .seconds(Int64(notAfter.timeIntervalSinceNow) + 5))
            let endedAt = Date()
            XCTAssertEqual(end?.end, .reset, "\(name) on a tunnel whose certificates expired ends with a reset")
            XCTAssertEqual(endedAt.timeIntervalSince(notAfter), 0.5, accuracy: 1.5, "\(name) was cut at notAfter")
            XCTAssertNil(end?.mismatchAt)
        }
        // Both ends close the tunnel at notAfter on their own timers: whichever fires first closes
        // it and says why, and the other sees it closed by the peer. (The timers fire at the same
        // whole second, so either may win; the liveness ticks, on whole seconds too, load both.)
        let expired = "the certificates that authenticated the tunnel expired"
        XCTAssertNotNil(
            self.pollUntil(timeout: .seconds(3)) {
                app1.log().contains("closing the tunnel to db1: \(expired)")
                    || db1.log().contains("closing the tunnel to app1: \(expired)")
            },
            "app1 or db1 logs why it closed their tunnel\n\(app1.logTail())\n\(db1.logTail())"
        )
        XCTAssertNotNil(
            self.pollUntil(timeout: .seconds(5)) {
                let peer = mesh.peer("db1", seenBy: "app1")
                return peer?["state"] as? String != "up" && (peer?["last_error"] as? String ?? "").contains("expire")
            },
            "meshctl peers shows db1 not up, and why: \(mesh.peer("db1", seenBy: "app1") ?? [:])"
        )
    }

    // MARK: Helpers

    /// `meshctl pki issue NODE --dir DIR --force --valid-for DURATION`.
    private func issue(_ node: String, from pki: TestPKI, validFor: String) throws {
        _ = try TestPKI.meshctl(["pki", "issue", node, "--dir", pki.dir.path, "--force", "--valid-for", validFor])
    }

    /// Writes the files one after another into `file` (a CA or CRL bundle), replacing it.
    private func concatenate(_ files: [URL], into file: URL) throws {
        var data = Data()
        for part in files { data.append(try Data(contentsOf: part)) }
        try data.write(to: file, options: .atomic)
    }

    private func authenticatedAt(_ peer: String, seenBy node: String, in mesh: TestMesh) -> Date? {
        (mesh.peer(peer, seenBy: node)?["authenticated_at"] as? String).flatMap { ISO8601DateFormatter().date(from: $0) }
    }
}
