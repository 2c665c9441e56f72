import Foundation
import MeshTestSupport
import NIOCore
import NIOPosix
import XCTest

/// Live reload (`meshctl reload`): each change to mesh.json, the certificates or the CRL has its
/// effect on a running mesh, while one stream through a tunnel no step touches (app1 -> db1) keeps
/// flowing from the first step to the last with no reset, no EOF, no corrupted or missing echo.
final class ReloadTests: MeshTestCase {
    func testReloadMatrixKeepsAnUnchangedStreamFlowing() throws {
        let mesh = try self.makeMesh(range: 40, nodes: ["app1", "db1", "db2", "db3"])
        let echo1 = try self.makeEchoServer()
        let echo2 = try self.makeEchoServer()
        let echo3 = try self.makeEchoServer()
        mesh.addService("echo1", on: ["db1": echo1.endpoint], allow: ["app1"])
        mesh.addService("echo2", on: ["db2": echo2.endpoint], allow: ["app1"])
        let f1 = try mesh.addForward(on: "app1", to: "echo1@db1")
        let f2 = try mesh.addForward(on: "app1", to: "echo2@db2")
        // db3 has a certificate and an address but joins only by reload.
        let db3Declaration = try XCTUnwrap(mesh.file.nodes.removeValue(forKey: "db3"))

        let app1 = try mesh.start("app1")
        let db1 = try mesh.start("db1")
        let db2 = try mesh.start("db2")
        guard mesh.waitUp(app1, peer: "db1"), mesh.waitUp(app1, peer: "db2"), mesh.waitUp(db1, peer: "db2") else { return }
        XCTAssertTrue(self.echoWorks(host: f2.host, port: f2.port), "echo2@db2 works before any reload")
        let db1Since = try XCTUnwrap(self.peer("db1", seenBy: "app1", in: mesh)?["since"] as? String, "app1's view of db1")
        let steady = self.marks([app1, db1])

        let pulse = try PulseClient(group: self.group, host: f1.host, port: f1.port)
        self.addCleanup { pulse.close() }
        let pulseStart = ContinuousClock.now
        XCTAssertNotNil(self.pollUntil(timeout: .seconds(5)) { pulse.snapshot().bytesEchoed > 0 }, "the long-lived stream never echoed")
        var progress = pulse.snapshot().bytesEchoed
        var timings: [String] = []
        /// The long-lived stream is open, uncorrupted and has echoed more since the last check.
        func checkPulse(_ step: String, since: ContinuousClock.Instant, line: UInt = #line) {
            let now = pulse.snapshot()
            _ = self.pollUntil(timeout: .seconds(3)) { pulse.snapshot().bytesEchoed > progress }
            let after = pulse.snapshot()
            XCTAssertTrue(
                after.isOpen,
                "\(step): the long-lived stream ended (\(after.end.map { "\($0)" } ?? "-"))\n\(mesh.allLogs())",
                line: line
            )
            XCTAssertNil(after.mismatchAt, "\(step): the long-lived stream's echo differs at byte \(after.mismatchAt ?? -1)", line: line)
            XCTAssertGreaterThan(after.bytesEchoed, progress, "\(step): the long-lived stream stopped echoing", line: line)
            progress = max(progress, now.bytesEchoed, after.bytesEchoed)
            timings.append(
                "\(step): long-lived stream slowest echo \(pulse.maxLatency(since: since).milliseconds) ms, \(pulse.echoCount(since: since)) echoes"
            )
        }

        // 1. Add a peer: db3 is declared, with a service and a forward to it from app1.
        var stepStart = ContinuousClock.now
        mesh.file.nodes["db3"] = db3Declaration
        mesh.addService("echo3", on: ["db3": echo3.endpoint], allow: ["app1"])
        let f3 = try mesh.addForward(on: "app1", to: "echo3@db3")
        var db3 = try mesh.start("db3")
        var marks = self.marks([app1, db1, db2])
        let reloadStart = ContinuousClock.now
        let added = self.expectReloaded("app1", in: mesh, step: "add db3")
        for node in ["db1", "db2"] { self.expectReloaded(node, in: mesh, step: "add db3") }
        XCTAssertNotNil(
            app1.waitForLog(containing: ["reloaded", "peers added: db3", "forwards added"], after: marks["app1"]!, timeout: .seconds(5)),
            "add db3: app1 logs what the reload changed"
        )
        // meshctl reload prints the result: what changed, as meshd logged it.
        XCTAssertTrue(added.contains("db3"), "add db3: meshctl reload on app1 should say the peer db3 was added, printed: \(added)")
        for process in [app1, db1, db2] {
            XCTAssertTrue(mesh.waitUp(process, peer: "db3", after: marks[process.label]!), "add db3: \(process.label) has a tunnel to db3")
        }
        let db3Up = ContinuousClock.now - reloadStart
        let f3Echo = self.waitForEcho(host: f3.host, port: f3.port, timeout: .seconds(10))
        XCTAssertNotNil(f3Echo, "add db3: the new forward echo3@db3 on app1 works\n\(mesh.allLogs())")
        XCTAssertEqual(self.peer("db3", seenBy: "app1", in: mesh)?["state"] as? String, "up", "add db3: meshctl peers on app1")
        timings.append(
            "add db3: reloads of 3 nodes + every tunnel to db3 up \(db3Up.milliseconds) ms; new forward echoing \((ContinuousClock.now - reloadStart).milliseconds) ms after the first reload"
        )
        checkPulse("add db3", since: stepStart)

        // 2. Allow list: echo2 allowed for app1 -> refused for new streams -> allowed again.
        stepStart = ContinuousClock.now
        mesh.file.services["echo2"]?.allow = ["db1"]
        try mesh.writeConfig()
        marks = self.marks([db2])
        for node in ["app1", "db1", "db2", "db3"] { self.expectReloaded(node, in: mesh, step: "refuse app1 on echo2") }
        let refused = StreamClient.exchange(
            group: self.group,
            host: f2.host,
            port: f2.port,
            payload: self.randomBuffer(512),
            timeout: .seconds(10)
        )
        XCTAssertEqual(refused.end, .reset, "allow list without app1: a new stream to echo2 must be refused (reset)")
        XCTAssertEqual(refused.received.readableBytes, 0, "allow list without app1: nothing of echo2 may come back")
        let refusal = db2.waitForLog(containing: ["stream refused", "echo2"], after: marks["db2"]!, timeout: .seconds(5))
        XCTAssertTrue(refusal?.contains("403") ?? false, "db2 logs the refusal as 403: \(refusal ?? "nothing logged")")
        mesh.file.services["echo2"]?.allow = ["app1"]
        try mesh.writeConfig()
        // This one by SIGHUP, as systemd's ExecReload sends it.
        for process in [app1, db1, db2, db3] { self.expectHangup(process, in: mesh, ok: true, step: "allow app1 on echo2 again") }
        XCTAssertTrue(self.echoWorks(host: f2.host, port: f2.port), "allow list with app1 again: a new stream to echo2 works")
        timings.append("allow list: refused at once after reload (\(refusal ?? "-"))")
        checkPulse("allow list", since: stepStart)

        // 3. Rotate db2's certificate: a new one (30 days, so its expiry differs) takes effect for new
        // handshakes, and db2's live tunnels are renewed with it, without a cut.
        stepStart = ContinuousClock.now
        let oldNotAfter = try XCTUnwrap(self.peer("db2", seenBy: "app1", in: mesh)?["certificate_not_after"] as? String)
        let oldServed = try self.servedCertificateEnd(mesh, node: "db2")
        try TestPKI.meshctl(["pki", "issue", "db2", "--dir", mesh.pki.dir.path, "--force", "--days", "30"])
        let newEnd = try self.certificateEnd(file: mesh.pki.cert("db2"))
        XCTAssertNotEqual(newEnd, oldServed, "the reissued certificate has another expiry")
        marks = self.marks([app1, db1, db2])
        for node in ["app1", "db1", "db2", "db3"] { self.expectReloaded(node, in: mesh, step: "rotate db2") }
        XCTAssertEqual(
            try self.servedCertificateEnd(mesh, node: "db2"),
            newEnd,
            "rotate db2: a new handshake with db2 gets the new certificate"
        )
        let db2Status = self.status("db2", in: mesh)
        XCTAssertEqual(
            (db2Status?["certificate_not_after"] as? String).flatMap(self.isoDate),
            self.openSSLDate(newEnd),
            "rotate db2: meshctl status on db2 shows the new certificate's expiry"
        )
        // db2 dials db3 (the lower name dials), so restarting db3 makes db2 handshake with its new certificate.
        let beforeRestart = self.marks([app1, db1, db2])
        db3.kill9()
        db3 = try mesh.start("db3")
        XCTAssertTrue(mesh.waitUp(db3, peer: "db2"), "rotate db2: db2 redials the restarted db3")
        // Every tunnel to the new db3 is up before the next step, so none comes up during it.
        for process in [app1, db1, db2] {
            XCTAssertTrue(
                mesh.waitUp(process, peer: "db3", after: beforeRestart[process.label]!),
                "\(process.label) redials the restarted db3"
            )
        }
        let seenByDB3 = (self.peer("db2", seenBy: "db3", in: mesh)?["certificate_not_after"] as? String).flatMap(self.isoDate)
        XCTAssertEqual(seenByDB3, self.openSSLDate(newEnd), "rotate db2: db3 sees db2's new certificate on the new tunnel")
        // Certificate rotation: db2's reload changed its certificate, so db2 asked app1 (which dials
        // it) for a fresh tunnel; the old one drained without a cut.
        XCTAssertNotNil(
            self.pollUntil(timeout: .seconds(10)) {
                let seen = (self.peer("db2", seenBy: "app1", in: mesh)?["certificate_not_after"] as? String)
                return seen != oldNotAfter && seen.flatMap(self.isoDate) == self.openSSLDate(newEnd)
            },
            "rotate db2: app1's tunnel to db2 was renewed with db2's new certificate\n\(mesh.allLogs())"
        )
        XCTAssertNil(
            app1.waitForLog(containing: "peer db2 down", after: marks["app1"]!, timeout: .zero),
            "rotate db2: app1's tunnel to db2 stayed up"
        )
        timings.append("rotate db2: served expiry \(oldServed) -> \(newEnd); db3 sees \(seenByDB3.map { "\($0)" } ?? "nothing")")
        checkPulse("rotate db2", since: stepStart)

        // 4. Revoke db3: every node that reloads the new CRL cuts its tunnel to db3, and db3 cannot
        // come back (its handshakes fail as revoked).
        stepStart = ContinuousClock.now
        XCTAssertTrue(self.echoWorks(host: f3.host, port: f3.port), "echo3@db3 works before the revocation")
        try mesh.pki.revoke("db3")
        marks = self.marks([app1, db1, db2])
        let revokeStart = ContinuousClock.now
        for node in ["app1", "db1", "db2"] { self.expectReloaded(node, in: mesh, step: "revoke db3") }
        let cut = app1.waitForLog(containing: ["peer db3", "revoked", "disconnecting"], after: marks["app1"]!, timeout: .seconds(5))
        XCTAssertNotNil(cut, "revoke db3: app1 logs that it disconnects db3\n\(app1.logTail())")
        // Watch all three at once, so each time is that node's own.
        var revokedDown: [String: Duration] = [:]
        _ = self.pollUntil(timeout: .seconds(10)) {
            for process in [app1, db1, db2]
            where revokedDown[process.label] == nil
                && process.log(after: marks[process.label]!).split(separator: "\n").contains(where: {
                    $0.contains("peer db3 down") && $0.contains("revoked")
                })
            {
                revokedDown[process.label] = ContinuousClock.now - revokeStart
            }
            return revokedDown.count == 3
        }
        for process in [app1, db1, db2] {
            XCTAssertNotNil(revokedDown[process.label], "revoke db3: \(process.label) reports db3 down as revoked\n\(process.logTail())")
        }
        // Every node dials db3 (it sorts last): wait until each has seen two redials fail (logged at
        // debug as "still down"; backoff_max 2 s), rather than a fixed time, then none may be up.
        let redialsFailed = self.pollUntil(timeout: .seconds(10)) {
            [app1, db1, db2].allSatisfy { process in
                process.log(after: marks[process.label]!).split(separator: "\n").filter { $0.contains("peer db3 still down") }.count >= 2
            }
        }
        XCTAssertNotNil(redialsFailed, "revoke db3: every node redials db3 and fails\n\(mesh.allLogs())")
        for process in [app1, db1, db2] {
            XCTAssertNil(
                process.waitForLog(containing: "peer db3 up", after: marks[process.label]!, timeout: .zero),
                "revoke db3: \(process.label) let the revoked db3 back in\n\(process.logTail())"
            )
        }
        let db3Peer = self.peer("db3", seenBy: "app1", in: mesh)
        XCTAssertNotEqual(db3Peer?["state"] as? String, "up", "revoke db3: app1's meshctl peers shows db3 not up")
        XCTAssertTrue(
            (db3Peer?["last_error"] as? String)?.contains("revoked") ?? false,
            "revoke db3: last_error says revoked: \(db3Peer?["last_error"] ?? "none")"
        )
        XCTAssertFalse(self.echoWorks(host: f3.host, port: f3.port, timeout: .seconds(3)), "revoke db3: no stream reaches db3")
        timings.append(
            "revoke db3: down as revoked after "
                + revokedDown.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value.milliseconds) ms" }.joined(separator: ", ")
                + "; db3 logs: \(db3.log().split(separator: "\n").last { $0.contains("peer") && $0.contains("down") } ?? "-")"
        )
        checkPulse("revoke db3", since: stepStart)

        // 5. Remove db2 while a stream through app1's tunnel to it is open: the tunnel, the stream
        // and the forward go; db2 itself is left running with its old config, as a retired node might be.
        stepStart = ContinuousClock.now
        let held = try PulseClient(group: self.group, host: f2.host, port: f2.port)
        self.addCleanup { held.close() }
        XCTAssertNotNil(self.pollUntil(timeout: .seconds(5)) { held.snapshot().bytesEchoed > 0 }, "the stream to db2 never echoed")
        mesh.file.nodes.removeValue(forKey: "db2")
        mesh.file.services.removeValue(forKey: "echo2")
        mesh.file.forwards.removeAll { $0.to == "echo2@db2" }
        try mesh.writeConfig()
        marks = self.marks([app1, db1, db2])
        let removeStart = ContinuousClock.now
        for node in ["app1", "db1"] { self.expectReloaded(node, in: mesh, step: "remove db2") }
        XCTAssertNotNil(
            app1.waitForLog(containing: "peer db2 stopped", after: marks["app1"]!, timeout: .seconds(5)),
            "remove db2: app1 stops its link\n\(app1.logTail())"
        )
        XCTAssertNotNil(
            db1.waitForLog(containing: "peer db2 stopped", after: marks["db1"]!, timeout: .seconds(5)),
            "remove db2: db1 stops its link\n\(db1.logTail())"
        )
        let heldEnd = held.waitForEnd(timeout: .seconds(10))
        let heldEndedAfter = ContinuousClock.now - removeStart
        XCTAssertNotNil(heldEnd, "remove db2: the stream through the removed tunnel is still open")
        XCTAssertEqual(heldEnd?.end, .reset, "remove db2: a stream cut with its tunnel must be reset, not ended cleanly")
        XCTAssertNil(heldEnd?.mismatchAt, "remove db2: what the cut stream did echo was right")
        XCTAssertThrowsError(
            try TCPSocket.connect(host: f2.host, port: f2.port).close(),
            "remove db2: app1's forward to echo2@db2 is closed"
        )
        XCTAssertFalse(
            mesh.peers(seenBy: "app1").contains { $0["name"] as? String == "db2" },
            "remove db2: app1 no longer lists db2"
        )
        XCTAssertFalse(
            mesh.peers(seenBy: "db1").contains { $0["name"] as? String == "db2" },
            "remove db2: db1 no longer lists db2"
        )
        XCTAssertNotNil(
            db2.waitForLog(containing: "peer app1 down", after: marks["db2"]!, timeout: .seconds(10)),
            "remove db2: db2 lost app1\n\(db2.logTail())"
        )
        timings.append(
            "remove db2: held stream ended (\(heldEnd?.end.map { "\($0)" } ?? "still open")) \(heldEndedAfter.milliseconds) ms after the first reload"
        )
        checkPulse("remove db2", since: stepStart)

        // 6. Rejected reloads leave the running config alone.
        stepStart = ContinuousClock.now
        let goodConfig = try Data(contentsOf: mesh.root.appendingPathComponent("mesh.json"))
        // 6a. Broken JSON.
        try Data(String(decoding: goodConfig, as: UTF8.self).dropLast(20).utf8).write(to: mesh.root.appendingPathComponent("mesh.json"))
        let broken = self.expectRejected("app1", in: mesh, step: "broken JSON")
        XCTAssertTrue(broken.contains("mesh.json"), "broken JSON: the error names the file: \(broken)")
        XCTAssertTrue(self.echoWorks(host: f1.host, port: f1.port), "broken JSON: the old config still serves new streams")
        XCTAssertFalse(self.echoWorks(host: f3.host, port: f3.port, timeout: .seconds(3)), "broken JSON: db3 stays revoked")
        let hangupBroken = self.expectHangup(db1, in: mesh, ok: false, step: "broken JSON")
        XCTAssertTrue(hangupBroken?.contains("mesh.json") ?? false, "broken JSON: db1 logs the error with the file: \(hangupBroken ?? "-")")
        XCTAssertTrue(self.echoWorks(host: f1.host, port: f1.port), "broken JSON: db1 still serves new streams after its rejected SIGHUP")
        // 6b. A valid file that also changes tunnel settings: rejected whole, so its new forward never opens.
        var restartNeeded = mesh.file
        restartNeeded.tunnel?.pingInterval = "2s"
        let f4Port = try mesh.freePort(mesh.host("app1"))
        restartNeeded.forwards.append(.init(on: "app1", listen: "\(mesh.host("app1")):\(f4Port)", to: "echo1@db1"))
        try mesh.writeConfig(restartNeeded)
        let tunnelChange = self.expectRejected("app1", in: mesh, step: "tunnel settings")
        XCTAssertTrue(tunnelChange.contains("restart"), "tunnel settings: the error says to restart: \(tunnelChange)")
        XCTAssertThrowsError(
            try TCPSocket.connect(host: mesh.host("app1"), port: f4Port).close(),
            "tunnel settings: nothing of the rejected config applied (its forward is not open)"
        )
        // 6c. This node's own address.
        var moved = mesh.file
        moved.nodes["app1"]?.address = "\(mesh.host("app1")):\(try mesh.freePort(mesh.host("app1")))"
        try mesh.writeConfig(moved)
        let addressChange = self.expectRejected("app1", in: mesh, step: "own address")
        XCTAssertTrue(addressChange.contains("restart"), "own address: the error says to restart: \(addressChange)")
        // 6d. The mesh name.
        var renamed = mesh.file
        renamed.mesh = "other"
        try mesh.writeConfig(renamed)
        let meshChange = self.expectRejected("app1", in: mesh, step: "mesh name")
        // 6e. A broken certificate with a good config.
        try goodConfig.write(to: mesh.root.appendingPathComponent("mesh.json"))
        let goodCert = try Data(contentsOf: mesh.pki.cert("app1"))
        try Data("-----BEGIN CERTIFICATE-----\nnot a certificate\n-----END CERTIFICATE-----\n".utf8).write(to: mesh.pki.cert("app1"))
        let badCert = self.expectRejected("app1", in: mesh, step: "broken certificate")
        XCTAssertTrue(badCert.contains("app1.pem"), "broken certificate: the error names the file: \(badCert)")
        try goodCert.write(to: mesh.pki.cert("app1"))
        self.expectReloaded("app1", in: mesh, step: "repaired")
        self.expectHangup(db1, in: mesh, ok: true, step: "repaired")
        XCTAssertEqual(
            self.status("app1", in: mesh)?["last_reload"].flatMap { ($0 as? [String: Any])?["ok"] as? Bool },
            true,
            "after the repair last_reload.ok is true again"
        )
        XCTAssertTrue(self.echoWorks(host: f1.host, port: f1.port), "after the rejected reloads new streams through app1 -> db1 work")
        timings.append("rejections: mesh name -> \(meshChange)")
        checkPulse("rejected reloads", since: stepStart)

        // The long-lived stream went through all of it: end it cleanly and check every byte.
        let unchanged = self.peer("db1", seenBy: "app1", in: mesh)
        XCTAssertEqual(unchanged?["since"] as? String, db1Since, "app1's tunnel to db1 never changed state")
        XCTAssertNil(
            app1.waitForLog(containing: "peer db1 down", after: steady["app1"]!, timeout: .zero),
            "app1's tunnel to db1 never went down"
        )
        XCTAssertNil(
            db1.waitForLog(containing: "peer app1 down", after: steady["db1"]!, timeout: .zero),
            "db1's tunnel to app1 never went down"
        )
        let final = pulse.finish(timeout: .seconds(10))
        let lived = ContinuousClock.now - pulseStart
        XCTAssertNotNil(final, "the long-lived stream did not end after its half-close")
        if let final {
            XCTAssertEqual(final.end, .eof, "the long-lived stream ends with the server's FIN after ours")
            XCTAssertNil(final.mismatchAt, "every echo on the long-lived stream was right")
            XCTAssertEqual(final.bytesEchoed, final.bytesSent, "every byte sent on the long-lived stream came back")
            XCTAssertGreaterThan(final.chunksSent, Int(lived.components.seconds) * 5, "the long-lived stream kept sending every ~100 ms")
            print(
                "long-lived stream: \(lived.milliseconds) ms, \(final.chunksSent) chunks, \(final.bytesEchoed)/\(final.bytesSent) bytes echoed, slowest echo \(final.maxLatency.milliseconds) ms, ended \(final.end.map { "\($0)" } ?? "-")"
            )
        }
        for line in timings { print("reload matrix: \(line)") }
    }

    /// A reload that passes validation but cannot be applied (its new forward's port is taken) is
    /// reported as rejected, so nothing else in it may have taken effect either: here, an allow list
    /// that would refuse app1 must not be in force, and the old forward must still serve.
    func testReloadThatCannotOpenItsForwardChangesNothing() throws {
        let mesh = try self.makeMesh(range: 41, nodes: ["app1", "db1"])
        let echo = try self.makeEchoServer()
        let back = try self.makeEchoServer()
        mesh.addService("echo", on: ["db1": echo.endpoint], allow: ["app1"])
        mesh.addService("back", on: ["app1": back.endpoint], allow: ["db1"])
        let forward = try mesh.addForward(on: "app1", to: "echo@db1")
        let app1 = try mesh.start("app1")
        let db1 = try mesh.start("db1")
        guard mesh.waitUp(app1, peer: "db1") else { return }
        XCTAssertTrue(self.echoWorks(host: forward.host, port: forward.port), "echo@db1 works before the reload")
        let steady = app1.logMark()

        // Someone else holds the port db1's new forward wants.
        let busyHost = mesh.host("db1")
        let busyPort = try mesh.freePort(busyHost)
        let squatter = try ServerBootstrap(group: self.group)
            .childChannelInitializer { $0.close() }
            .bind(host: busyHost, port: busyPort).wait()
        self.addCleanup { try? squatter.close().wait() }
        mesh.file.services["echo"]?.allow = ["db1"]
        mesh.file.forwards.append(.init(on: "db1", listen: "\(busyHost):\(busyPort)", to: "back@app1"))
        try mesh.writeConfig()
        let error = self.expectRejected("db1", in: mesh, step: "busy forward port")
        XCTAssertTrue(error.contains("\(busyPort)"), "busy forward port: the error names the address: \(error)")

        let outcome = StreamClient.exchange(
            group: self.group,
            host: forward.host,
            port: forward.port,
            payload: self.randomBuffer(1024),
            timeout: .seconds(10)
        )
        XCTAssertEqual(
            outcome.end,
            .eof,
            "busy forward port: the rejected reload's allow list (no app1) must not be in force; the stream ended \(outcome.end)\n\(db1.logTail())"
        )
        XCTAssertEqual(outcome.received.readableBytes, 1024, "busy forward port: the old allow list still lets app1 through")
        XCTAssertNil(app1.waitForLog(containing: "peer db1 down", after: steady, timeout: .zero), "busy forward port: the tunnel stayed up")
    }

    // MARK: Helpers

    /// Each process's log position now, by node.
    private func marks(_ processes: [SpawnedProcess]) -> [String: Int] {
        Dictionary(uniqueKeysWithValues: processes.map { ($0.label, $0.logMark()) })
    }

    /// `meshctl reload` on `node` must exit 0 and `last_reload.ok` be true; what meshctl printed.
    @discardableResult
    private func expectReloaded(_ node: String, in mesh: TestMesh, step: String, line: UInt = #line) -> String {
        let start = ContinuousClock.now
        guard let result = try? mesh.meshctl(node, ["reload"]) else {
            XCTFail("\(step): cannot run meshctl reload on \(node)", line: line)
            return ""
        }
        let took = ContinuousClock.now - start
        XCTAssertEqual(
            result.status,
            0,
            "\(step): meshctl reload on \(node) exited \(result.status): \(result.output)\n\(mesh.allLogs())",
            line: line
        )
        XCTAssertFalse(result.timedOut, "\(step): meshctl reload on \(node) timed out", line: line)
        print(
            "\(step): meshctl reload on \(node) exit \(result.status) in \(took.milliseconds) ms: \(result.output.trimmingCharacters(in: .whitespacesAndNewlines))"
        )
        let lastReload = self.status(node, in: mesh)?["last_reload"] as? [String: Any]
        XCTAssertEqual(lastReload?["ok"] as? Bool, true, "\(step): \(node) status last_reload \(lastReload ?? [:])", line: line)
        return result.output
    }

    /// SIGHUP to `process` must reload it (`ok`) or be rejected, as its log and `last_reload` say,
    /// and never end the process; the log line, and how long it took to appear.
    @discardableResult
    private func expectHangup(_ process: SpawnedProcess, in mesh: TestMesh, ok: Bool, step: String, line: UInt = #line) -> String? {
        let mark = process.logMark()
        let start = ContinuousClock.now
        kill(process.pid, SIGHUP)
        let logged = process.waitForLog(containing: ok ? "reloaded" : "reload rejected", after: mark, timeout: .seconds(10))
        let took = ContinuousClock.now - start
        XCTAssertNotNil(
            logged,
            "\(step): SIGHUP to \(process.label) logged no \(ok ? "reload" : "rejection")\n\(process.logTail())",
            line: line
        )
        XCTAssertTrue(process.isRunning, "\(step): SIGHUP ended \(process.label)\n\(process.logTail())", line: line)
        // The log line comes just before last_reload is updated.
        let kept = self.pollUntil(timeout: .seconds(3)) {
            (self.status(process.label, in: mesh)?["last_reload"] as? [String: Any])?["ok"] as? Bool == ok
        }
        XCTAssertNotNil(kept, "\(step): after SIGHUP \(process.label) status last_reload.ok should be \(ok)", line: line)
        print("\(step): SIGHUP to \(process.label) -> \(logged ?? "nothing logged") in \(took.milliseconds) ms")
        return logged
    }

    /// `meshctl reload` on `node` must exit 2 with the error, and `last_reload` keep it; the error text.
    @discardableResult
    private func expectRejected(_ node: String, in mesh: TestMesh, step: String, line: UInt = #line) -> String {
        guard let result = try? mesh.meshctl(node, ["reload"]) else {
            XCTFail("\(step): cannot run meshctl reload on \(node)", line: line)
            return ""
        }
        XCTAssertEqual(result.status, 2, "\(step): meshctl reload on \(node) should be rejected (exit 2): \(result.output)", line: line)
        XCTAssertTrue(result.output.contains("rejected"), "\(step): meshctl says the reload was rejected: \(result.output)", line: line)
        let lastReload = self.status(node, in: mesh)?["last_reload"] as? [String: Any]
        XCTAssertEqual(lastReload?["ok"] as? Bool, false, "\(step): \(node) status last_reload.ok after a rejected reload", line: line)
        let error = lastReload?["error"] as? String ?? ""
        XCTAssertFalse(error.isEmpty, "\(step): \(node) status last_reload.error is empty", line: line)
        XCTAssertTrue(
            result.output.contains(error),
            "\(step): meshctl prints the error status keeps (\(error)): \(result.output)",
            line: line
        )
        print("\(step): meshctl reload on \(node) exit \(result.status): \(result.output.trimmingCharacters(in: .whitespacesAndNewlines))")
        return error
    }

    /// `meshctl status --json` on `node`, parsed (exit 0 or 1: both carry the status).
    private func status(_ node: String, in mesh: TestMesh) -> [String: Any]? {
        guard let result = try? mesh.meshctl(node, ["status", "--json"]), result.status <= 1 else { return nil }
        return (try? JSONSerialization.jsonObject(with: Data(result.stdout.utf8))) as? [String: Any]
    }

    private func peer(_ name: String, seenBy node: String, in mesh: TestMesh) -> [String: Any]? {
        mesh.peer(name, seenBy: node)
    }

    /// The notAfter (as openssl prints it) of the certificate `node` presents to a new TLS client now.
    /// The client sends no certificate: under TLS 1.3 it has the server's certificate before the
    /// server refuses it, and no tunnel is made.
    private func servedCertificateEnd(_ mesh: TestMesh, node: String) throws -> String {
        let address = mesh.meshAddress(node)
        let handshake = try Command.run(
            "openssl",
            ["s_client", "-connect", "\(address.host):\(address.port)", "-alpn", "h2", "-showcerts"],
            stdin: Data(),
            timeout: .seconds(10)
        )
        let enddate = try Command.run("openssl", ["x509", "-noout", "-enddate"], stdin: Data(handshake.stdout.utf8), timeout: .seconds(10))
        guard enddate.status == 0, enddate.stdout.hasPrefix("notAfter=") else {
            throw Command.Failed(command: "openssl s_client to \(node) at \(address)", result: handshake)
        }
        return String(enddate.stdout.dropFirst("notAfter=".count)).trimmingCharacters(in: .whitespacesAndNewlines)
    }

    private func certificateEnd(file: URL) throws -> String {
        let stdout = try Command.check("openssl", ["x509", "-noout", "-enddate", "-in", file.path])
        return String(stdout.dropFirst("notAfter=".count)).trimmingCharacters(in: .whitespacesAndNewlines)
    }

    /// An ISO-8601 date from the control API.
    private func isoDate(_ text: String) -> Date? {
        ISO8601DateFormatter().date(from: text)
    }

    /// A date as `openssl x509 -enddate` prints it ("Jun  1 12:00:00 2025 GMT").
    private func openSSLDate(_ text: String) -> Date? {
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = TimeZone(identifier: "UTC")
        formatter.dateFormat = "MMM d HH:mm:ss yyyy zzz"
        return formatter.date(from: text.split(separator: " ", omittingEmptySubsequences: true).joined(separator: " "))
    }
}
