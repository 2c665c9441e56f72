import Foundation
import MeshControlModel
import MeshTestSupport
import XCTest

/// `meshctl reload --dry-run` and `meshctl check PATH --against SOCKET` against a running meshd:
/// the plan names what a reload would change, a config a reload would refuse is refused with the
/// reload's own error, and the agent changes nothing — same peers, same listeners, no reload.
final class ReloadDryRunTests: MeshTestCase {
    private var mesh: TestMesh!
    private var app1: SpawnedProcess!
    private var forward: (host: String, port: Int)!
    private var rw: (host: String, port: Int)!

    /// app1 and db1 up, with a forward app1 -> echo@db1 and balancer pg's rw listener on app1;
    /// db2 has a certificate and an address but is not declared yet.
    override func setUpWithError() throws {
        try super.setUpWithError()
        self.mesh = try self.makeMesh(range: 42, nodes: ["app1", "db1", "db2"])
        let echo = try self.makeEchoServer()
        self.mesh.addService("echo", on: ["db1": echo.endpoint], allow: ["app1"])
        let pgPort = try self.mesh.freePort("127.0.0.1")
        self.mesh.file.services["pg"] = .init(on: ["db1": "127.0.0.1:\(pgPort)"], allow: ["app1"], postgres: .init(probeInterval: "1s"))
        self.forward = try self.mesh.addForward(on: "app1", to: "echo@db1")
        let rwHost = self.mesh.host("app1")
        self.rw = (rwHost, try self.mesh.freePort(rwHost))
        self.mesh.file.balancers = ["pg": .init(service: "pg", on: ["app1": .init(rw: "\(rwHost):\(self.rw.port)")], maxLag: "10s")]
        self.mesh.file.nodes.removeValue(forKey: "db2")
        self.app1 = try self.mesh.start("app1")
        let db1 = try self.mesh.start("db1")
        guard self.mesh.waitUp(self.app1, peer: "db1"), self.mesh.waitUp(db1, peer: "app1") else {
            throw XCTSkip("the mesh did not come up; see the failure above")
        }
    }

    func testDryRunPlansAddedPeerRemovedForwardChangedServiceAndBalancerAndAppliesNothing() throws {
        let before = try self.agentState()
        let mark = self.app1.logMark()
        let running = self.mesh.file

        var candidate = running
        candidate.nodes["db2"] = .init(
            address: "\(self.mesh.host("db2")):\(try self.mesh.freePort(self.mesh.host("db2")))",
            control: self.mesh.controlPath("db2")
        )
        candidate.forwards.removeAll { $0.on == "app1" }
        candidate.services["pg"]?.allow = ["app1", "db2"]
        candidate.balancers?["pg"]?.maxLag = "5s"
        let expected = [
            ConfigChange(.tunnel, .added, "db2", detail: "this node dials it at \(candidate.nodes["db2"]!.address)"),
            ConfigChange(
                .listener,
                .closed,
                "forward-\(self.forward.port)",
                detail: "\(self.forward.host):\(self.forward.port) -> echo@db1"
            ),
            ConfigChange(.service, .changed, "pg", detail: "allow"),
            ConfigChange(.balancer, .changed, "pg", detail: "max_lag 10s -> 5s"),
        ]

        // The agent's own file, as a reload would read it.
        try self.mesh.writeConfig(candidate)
        let own = try self.dryRun(["reload", "--dry-run", "--json", "--control", self.mesh.controlPath("app1")])
        XCTAssertEqual(own.status, 0, own.text)
        XCTAssertEqual(own.outcome?.dryRun, true, own.text)
        XCTAssertEqual(own.outcome?.changes, expected, own.text)
        let text = try self.mesh.meshctl("app1", ["reload", "--dry-run"])
        XCTAssertEqual(text.status, 0, text.output)
        // Grouped, one change a line (columns aligned: compared with single spaces).
        let lines = text.stdout.split(separator: "\n").map { $0.split(separator: " ").joined(separator: " ") }
        XCTAssertEqual(
            lines,
            [
                "dry run, nothing applied:",
                "tunnels", "added db2 this node dials it at \(candidate.nodes["db2"]!.address)",
                "listeners", "closed forward-\(self.forward.port) \(self.forward.host):\(self.forward.port) -> echo@db1",
                "services", "changed pg allow",
                "balancers", "changed pg max_lag 10s -> 5s",
            ],
            text.stdout
        )
        print("meshctl reload --dry-run:\n\(text.stdout)")

        // Another file, sent to the agent: the same plan.
        try self.mesh.writeConfig(running)
        let path = try self.mesh.writeConfig(candidate, name: "candidate.json").path
        let against = try self.dryRun(["check", path, "--against", self.mesh.controlPath("app1"), "--json"])
        XCTAssertEqual(against.status, 0, against.text)
        XCTAssertEqual(against.outcome?.changes, expected, against.text)

        // The running config itself: nothing to do.
        let same = try self.mesh.meshctl("app1", ["reload", "--dry-run"])
        XCTAssertEqual(same.status, 0, same.output)
        XCTAssertTrue(same.stdout.hasSuffix("nothing applied:\nno change\n"), same.stdout)

        XCTAssertEqual(try self.agentState(), before, "a dry run must change nothing in the agent")
        XCTAssertTrue(self.echoWorks(host: self.forward.host, port: self.forward.port), "the forward a dry run would close still serves")
        XCTAssertNotNil(try? TCPSocket.connect(host: self.rw.host, port: self.rw.port), "balancer pg's rw listener is still open")
        XCTAssertNil(
            self.app1.waitForLog(containing: "reloaded", after: mark, timeout: .zero),
            "a dry run logged a reload:\n\(self.app1.logTail())"
        )
    }

    func testAChangedCABundleRedialsEveryTunnel() throws {
        let before = try self.agentState()
        // A second CA in the bundle, as in the first step of a CA rotation.
        let other = self.mesh.root.appendingPathComponent("pki-next")
        _ = try TestPKI(mesh: "itest", dir: other)
        let bundle = self.mesh.pki.dir.appendingPathComponent("ca.pem")
        let original = try Data(contentsOf: bundle)
        try (original + Data(contentsOf: other.appendingPathComponent("ca.pem"))).write(to: bundle)
        let plan = try self.dryRun(["reload", "--dry-run", "--json", "--control", self.mesh.controlPath("app1")])
        XCTAssertEqual(plan.status, 0, plan.text)
        XCTAssertEqual(
            plan.outcome?.changes,
            [ConfigChange(.tunnel, .redialed, "db1", detail: "certificate or CA bundle changed: a fresh tunnel is authenticated with it")],
            plan.text
        )
        XCTAssertEqual(try self.agentState(), before, "a dry run must change nothing in the agent")
    }

    func testWhatAReloadRefusesADryRunRefusesWithTheSameError() throws {
        let running = self.mesh.file
        var moved = running
        moved.nodes["app1"]?.address = "\(self.mesh.host("app1")):\(try self.mesh.freePort(self.mesh.host("app1")))"
        var missingCRL = running
        missingCRL.tls.crl = "pki/missing-crl.pem"
        var unknownService = running
        unknownService.forwards.append(.init(on: "app1", listen: "127.0.0.1:\(try self.mesh.freePort("127.0.0.1"))", to: "nothing@db1"))

        for (label, candidate) in [("moved node", moved), ("missing CRL", missingCRL), ("unknown service", unknownService)] {
            let before = try self.agentState()
            try self.mesh.writeConfig(candidate)
            let dry = try self.dryRun(["reload", "--dry-run", "--json", "--control", self.mesh.controlPath("app1")])
            XCTAssertEqual(dry.status, 2, "\(label): \(dry.text)")
            XCTAssertEqual(dry.outcome?.ok, false, "\(label): \(dry.text)")
            let error = try XCTUnwrap(dry.outcome?.error, "\(label): \(dry.text)")
            XCTAssertEqual(try self.agentState(), before, "\(label): a refused dry run must change nothing")

            let path = try self.mesh.writeConfig(candidate, name: "candidate.json").path
            let against = try self.dryRun(["check", path, "--against", self.mesh.controlPath("app1"), "--json"])
            XCTAssertEqual(against.status, 2, "\(label): \(against.text)")
            // The same error, naming the file meshctl sent instead of the agent's own.
            let mainPath = self.mesh.root.appendingPathComponent("mesh.json").path
            XCTAssertEqual(against.outcome?.error?.replacingOccurrences(of: path, with: mainPath), error, "\(label): \(against.text)")

            let reload = try self.mesh.meshctl("app1", ["reload"])
            XCTAssertEqual(reload.status, 2, "\(label): \(reload.output)")
            XCTAssertTrue(reload.stdout.contains(error), "\(label): the reload's error is the dry run's (\(error)): \(reload.stdout)")
            print("\(label): dry run and reload refused with: \(error)")
        }
    }

    // MARK: Helpers

    /// What a dry run must leave alone: the last load, the loaded config's digest, every peer's
    /// tunnel (state, since, reconnects) and the services and forwards the agent runs.
    private struct AgentState: Equatable {
        var lastReload: ReloadOutcome
        var configSHA256: String
        var peers: [String]
        var services: [ServiceInfo]
    }

    private func agentState() throws -> AgentState {
        let status = try self.read(AgentStatus.self, ["status", "--json"])
        let peers = try self.read([PeerInfo].self, ["peers", "--json"])
        return AgentState(
            lastReload: status.lastReload,
            configSHA256: status.configSHA256,
            peers: peers.map { "\($0.name) \($0.state) since \($0.since) reconnects \($0.reconnects)" },
            services: try self.read([ServiceInfo].self, ["services", "--json"])
        )
    }

    private func read<T: Decodable>(_ type: T.Type, _ command: [String]) throws -> T {
        let result = try self.mesh.meshctl("app1", command)
        XCTAssertLessThanOrEqual(result.status, 1, result.output)
        return try ControlJSON.decoder().decode(T.self, from: Data(result.stdout.utf8))
    }

    /// meshctl with `arguments` as given; its exit status, its decoded answer and all it printed.
    private func dryRun(_ arguments: [String]) throws -> (status: Int32, outcome: ReloadOutcome?, text: String) {
        let result = try Command.run(BuildProducts.meshctl.path, arguments, timeout: .seconds(20))
        XCTAssertFalse(result.timedOut, "meshctl \(arguments.joined(separator: " ")) timed out")
        let outcome = try? ControlJSON.decoder().decode(ReloadOutcome.self, from: Data(result.stdout.utf8))
        return (result.status, outcome, result.output)
    }
}
