import Foundation
import MeshControlModel
import MeshTestSupport
import NIOCore
import NIOPosix
import XCTest

/// Two real meshd processes with certificates from `meshctl pki`, inspected through the built
/// meshctl: the final wiring of the control API to a live `MeshNode`.
final class MeshdControlTests: XCTestCase {
    private var directory: String!
    private var meshctl: String!
    private var config: String!
    private var agents: [String: SpawnedProcess] = [:]

    override func setUp() async throws {
        self.directory = try TemporaryDirectory.make()
        self.meshctl = try BuildProducts.path("meshctl")
        let pki = try TestPKI(mesh: "ctltest", dir: URL(fileURLWithPath: self.directory + "/pki"))
        for node in ["alpha", "beta"] { try pki.issue(node) }
        let alphaPort = try TCPSocket.freePort(host: "127.0.44.1")
        let betaPort = try TCPSocket.freePort(host: "127.0.44.2")
        let forwardPort = try TCPSocket.freePort(host: "127.0.44.1")
        self.config = self.directory + "/mesh.json"
        try Data(
            """
            {
              "mesh": "ctltest",
              "tls": { "ca": "pki/ca.pem", "cert": "pki/{node}.pem", "key": "pki/{node}.key", "crl": "pki/crl.pem" },
              "tunnel": { "ping_interval": "200ms", "dead_after": 3, "backoff_max": "500ms" },
              "nodes": {
                "alpha": { "address": "127.0.44.1:\(alphaPort)", "control": "run/alpha.sock" },
                "beta":  { "address": "127.0.44.2:\(betaPort)", "control": "run/beta.sock" }
              },
              "services": { "echo": { "on": { "beta": "127.0.0.1:9" }, "allow": ["alpha"] } },
              "forwards": [ { "on": "alpha", "listen": "127.0.44.1:\(forwardPort)", "to": "echo@beta" } ]
            }
            """.utf8
        ).write(to: URL(fileURLWithPath: self.config))
    }

    override func tearDown() async throws {
        for process in self.agents.values { process.kill9() }
        if let directory { try? FileManager.default.removeItem(atPath: directory) }
    }

    func testPeersStatusPingServicesAndAPeerKilled() throws {
        try self.start("alpha")
        try self.start("beta")
        let up = try self.waitForPeers(on: "alpha", timeout: 15) { peers in
            peers.first?.state == "up" && peers.first?.rttSeconds != nil
        }
        XCTAssertEqual(up.map(\.name), ["beta"])
        XCTAssertTrue(up[0].dialer, "alpha sorts lower, so it dials")
        XCTAssertNotNil(up[0].certificateNotAfter)

        let table = try self.meshctl("alpha", ["peers"])
        XCTAssertEqual(table.status, 0, table.stderr)
        let rows = table.stdout.split(separator: "\n")
        XCTAssertEqual(rows.count, 2, table.stdout)
        XCTAssertTrue(rows[0].hasPrefix("NAME  ADDRESS"), table.stdout)
        XCTAssertTrue(rows[1].hasPrefix("beta  127.0.44.2:"), table.stdout)
        XCTAssertTrue(rows[1].contains("  up  "), table.stdout)
        print("meshctl peers on alpha:\n" + table.stdout)

        let statusRun = try self.meshctl("alpha", ["status", "--json"])
        XCTAssertEqual(statusRun.status, 0, statusRun.stderr)
        let status = try ControlJSON.decoder().decode(AgentStatus.self, from: Data(statusRun.stdout.utf8))
        XCTAssertEqual(status.node, "alpha")
        XCTAssertEqual(status.mesh, "ctltest")
        XCTAssertEqual(status.version, "0.1.0")
        XCTAssertEqual(status.configFile, self.config)
        let digest = try Command.check("/usr/bin/sha256sum", [self.config]).split(separator: " ").first.map(String.init)
        XCTAssertEqual(status.configSHA256, digest)
        XCTAssertEqual(status.peersUp, 1)
        XCTAssertEqual(status.peersTotal, 1)
        XCTAssertEqual(status.certificateDaysLeft, 89, "issued for 90 days from an hour ago")
        XCTAssertTrue(status.lastReload.ok)
        let human = try self.meshctl("alpha", ["status"])
        XCTAssertTrue(human.stdout.contains("peers          1/1 up\n"), human.stdout)
        print("meshctl status on alpha:\n" + human.stdout)

        let pingRun = try self.meshctl("alpha", ["ping", "beta", "-c", "3", "--json"])
        XCTAssertEqual(pingRun.status, 0, pingRun.stderr)
        let ping = try ControlJSON.decoder().decode(PingReport.self, from: Data(pingRun.stdout.utf8))
        XCTAssertEqual(ping.samplesSeconds.count, 3)
        XCTAssertTrue(ping.samplesSeconds.allSatisfy { $0 > 0 && $0 < 1 }, "\(ping.samplesSeconds)")

        let alphaServices = try ControlJSON.decoder().decode(
            [ServiceInfo].self,
            from: Data(try self.meshctl("alpha", ["services", "--json"]).stdout.utf8)
        )
        XCTAssertEqual(alphaServices.map(\.role), [.forward])
        XCTAssertEqual(alphaServices.first?.to, "echo@beta")
        let betaServices = try ControlJSON.decoder().decode(
            [ServiceInfo].self,
            from: Data(try self.meshctl("beta", ["services", "--json"]).stdout.utf8)
        )
        XCTAssertEqual(betaServices, [ServiceInfo(name: "echo", role: .served, target: "127.0.0.1:9", allow: ["alpha"])])

        var info = stat()
        XCTAssertEqual(lstat(self.directory + "/run/alpha.sock", &info), 0)
        XCTAssertEqual(info.st_mode & 0o777, 0o660)

        // kill -9 the peer: alpha reports it not up, with the error, and meshctl exits 1.
        let beta = try XCTUnwrap(self.agents["beta"])
        beta.kill9()
        let down = try self.waitForPeers(on: "alpha", timeout: 15) { peers in
            peers.first.map { $0.state != "up" && $0.lastError != nil } ?? false
        }
        XCTAssertNotEqual(down[0].state, "up")
        let degraded = try self.meshctl("alpha", ["peers"])
        XCTAssertEqual(degraded.status, 1, degraded.stdout + degraded.stderr)
        print("meshctl peers on alpha after kill -9 of beta:\n" + degraded.stdout)
        let pingDown = try self.meshctl("alpha", ["ping", "beta"])
        XCTAssertEqual(pingDown.status, 1, pingDown.stderr)
        XCTAssertTrue(pingDown.stderr.contains("cannot ping beta"), pingDown.stderr)
        let unreachable = try self.meshctl("beta", ["status"])
        XCTAssertEqual(unreachable.status, 3, "beta's agent is gone: \(unreachable.stderr)")
        XCTAssertTrue(unreachable.stderr.contains(self.directory + "/run/beta.sock"), unreachable.stderr)

        // SIGTERM: alpha shuts down gracefully and removes its socket file.
        let alpha = try XCTUnwrap(self.agents["alpha"])
        alpha.signal(SIGTERM)
        XCTAssertNotNil(alpha.waitForExit(timeout: .seconds(20)), "meshd did not stop within 20 s of SIGTERM")
        XCTAssertFalse(FileManager.default.fileExists(atPath: self.directory + "/run/alpha.sock"))
    }

    // MARK: Helpers

    private func start(_ node: String) throws {
        // A relative --config: status must still report the file's absolute path.
        self.agents[node] = try SpawnedProcess(
            label: node,
            executable: try BuildProducts.path("meshd"),
            arguments: ["--config", "mesh.json", "--node", node],
            directory: URL(fileURLWithPath: self.directory),
            logURL: URL(fileURLWithPath: self.directory + "/\(node)-\(self.agents.count).log")
        )
    }

    private func meshctl(_ node: String, _ arguments: [String]) throws -> CommandResult {
        try Command.run(self.meshctl, ["--config", self.config, "--node", node] + arguments, environment: [:])
    }

    /// Polls `peers --json` every 100 ms until `done` holds, up to `timeout` seconds.
    private func waitForPeers(on node: String, timeout: TimeInterval, until done: ([PeerInfo]) -> Bool) throws -> [PeerInfo] {
        let deadline = Date().addingTimeInterval(timeout)
        var last = "no answer yet"
        while Date() < deadline {
            let run = try self.meshctl(node, ["peers", "--json"])
            if let peers = try? ControlJSON.decoder().decode([PeerInfo].self, from: Data(run.stdout.utf8)) {
                if done(peers) { return peers }
                last = run.stdout
            } else {
                last = run.stderr
            }
            usleep(100_000)
        }
        let log = self.agents[node]?.log() ?? ""
        XCTFail("peers on \(node) did not reach the expected state within \(timeout)s; last: \(last)\nlog:\n\(log.suffix(3000))")
        throw CancellationError()
    }
}
