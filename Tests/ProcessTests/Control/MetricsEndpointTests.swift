import Foundation
import MeshControl
import MeshTestSupport
import NIOCore
import NIOPosix
import XCTest

/// `/metrics` of real meshd processes, scraped with curl like Prometheus would: on the control socket
/// and on mesh.json's "metrics" TCP address. Parsed strictly as Prometheus text; the counters must
/// move with real traffic through a forward, a rejected handshake and a reconnect.
final class MetricsEndpointTests: XCTestCase {
    private var directory: String!
    private var meshctl: String!
    private var agents: [String: SpawnedProcess] = [:]
    private var echo: EchoServer!
    private var forwardPort = 0
    private var metricsPort = 0
    private var alphaPort = 0

    override func setUp() async throws {
        self.directory = try TemporaryDirectory.make()
        self.meshctl = try BuildProducts.path("meshctl")
        let pki = try TestPKI(mesh: "mettest", dir: URL(fileURLWithPath: self.directory + "/pki"))
        for node in ["alpha", "beta"] { try pki.issue(node) }
        self.echo = try EchoServer(group: MultiThreadedEventLoopGroup.singleton)
        self.alphaPort = try TCPSocket.freePort(host: "127.0.45.1")
        let betaPort = try TCPSocket.freePort(host: "127.0.45.2")
        self.forwardPort = try TCPSocket.freePort(host: "127.0.45.1")
        self.metricsPort = try TCPSocket.freePort(host: "127.0.45.1")
        // "metrics" is one address for every node; two agents on one machine need two files.
        for (file, metrics) in [("alpha.json", "\"metrics\": \"127.0.45.1:\(self.metricsPort)\","), ("beta.json", "")] {
            try Data(
                """
                {
                  "mesh": "mettest",
                  \(metrics)
                  "tls": { "ca": "pki/ca.pem", "cert": "pki/{node}.pem", "key": "pki/{node}.key", "crl": "pki/crl.pem" },
                  "tunnel": { "ping_interval": "200ms", "dead_after": 3, "backoff_max": "300ms" },
                  "nodes": {
                    "alpha": { "address": "127.0.45.1:\(self.alphaPort)", "control": "run/alpha.sock" },
                    "beta":  { "address": "127.0.45.2:\(betaPort)", "control": "run/beta.sock" }
                  },
                  "services": { "echo": { "on": { "beta": "127.0.0.1:\(self.echo.port)" }, "allow": ["alpha"] } },
                  "forwards": [ { "on": "alpha", "listen": "127.0.45.1:\(self.forwardPort)", "to": "echo@beta" } ]
                }
                """.utf8
            ).write(to: URL(fileURLWithPath: self.directory + "/" + file))
        }
    }

    override func tearDown() async throws {
        for process in self.agents.values { process.kill9() }
        self.echo?.close()
        if let directory { try? FileManager.default.removeItem(atPath: directory) }
    }

    func testMetricsParseAndMoveWithTraffic() async throws {
        try self.start("alpha")
        try self.start("beta")
        let first = try self.waitForMetrics(timeout: 15, "alpha's tunnel to beta up with an RTT") {
            $0.value("meshd_peer_up", ["peer": "beta"]) == 1 && $0.value("meshd_peer_rtt_seconds", ["peer": "beta"]) != nil
        }
        let types = [
            "meshd_peer_up": "gauge", "meshd_peer_rtt_seconds": "gauge", "meshd_streams_active": "gauge",
            "meshd_tunnel_reconnects_total": "counter", "meshd_bytes_total": "counter",
        ]
        for (name, type) in types {
            XCTAssertEqual(first.families[name]?.type, type, name)
            XCTAssertNotNil(first.families[name]?.help, "\(name) has a HELP line")
        }
        let rtt = try XCTUnwrap(first.value("meshd_peer_rtt_seconds", ["peer": "beta"]))
        XCTAssertTrue(rtt > 0 && rtt < 1, "RTT \(rtt) s on loopback")
        XCTAssertEqual(first.value("meshd_streams_active", ["peer": "beta"]), 0)
        XCTAssertEqual(first.value("meshd_tunnel_reconnects_total", ["peer": "beta"]), 0)
        XCTAssertEqual(Set(first.samples("meshd_bytes_total").map { $0.labels["direction"] }), ["sent", "received"])
        let sentBefore = try XCTUnwrap(first.value("meshd_bytes_total", ["peer": "beta", "direction": "sent"]))
        let receivedBefore = try XCTUnwrap(first.value("meshd_bytes_total", ["peer": "beta", "direction": "received"]))
        let opened = ["peer": "beta", "service": "echo", "result": "opened"]
        XCTAssertNil(first.value("meshd_streams_total", opened), "no stream opened yet")

        // 1 MiB through the forward and back.
        let size = 1 << 20
        let payload = (0..<size).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ 7) }
        let echoed = TCPSocket.echo(host: "127.0.45.1", port: self.forwardPort, payload: payload, timeout: .seconds(20))
        XCTAssertEqual(echoed.data.count, size)
        XCTAssertEqual(echoed.end, .eof, "the echo ended cleanly")
        XCTAssertTrue(echoed.data == payload, "the echo differs from what was sent")
        let after = try self.waitForMetrics(timeout: 10, "the stream counted and closed") {
            $0.value("meshd_streams_total", opened) == 1 && $0.value("meshd_streams_active", ["peer": "beta"]) == 0
        }
        XCTAssertEqual(after.families["meshd_streams_total"]?.type, "counter")
        let sent = try XCTUnwrap(after.value("meshd_bytes_total", ["peer": "beta", "direction": "sent"]))
        let received = try XCTUnwrap(after.value("meshd_bytes_total", ["peer": "beta", "direction": "received"]))
        XCTAssertGreaterThanOrEqual(sent - sentBefore, Double(size), "alpha sent the 1 MiB to beta")
        XCTAssertGreaterThanOrEqual(received - receivedBefore, Double(size), "and received the echo")
        XCTAssertLessThan(sent - sentBefore, Double(size) * 1.1, "payload bytes, not much more")

        // The TCP listener serves the same series, to a plain HTTP client.
        let tcp = try self.curl(["http://127.0.45.1:\(self.metricsPort)/metrics"])
        XCTAssertEqual(tcp.status, 200, tcp.head)
        XCTAssertTrue(tcp.head.lowercased().contains("content-type: text/plain; version=0.0.4"), tcp.head)
        let overTCP = try PrometheusText(tcp.body)
        XCTAssertEqual(Set(overTCP.families.keys), Set(after.families.keys))
        XCTAssertEqual(overTCP.value("meshd_streams_total", opened), 1)
        XCTAssertGreaterThanOrEqual(try XCTUnwrap(overTCP.value("meshd_bytes_total", ["peer": "beta", "direction": "sent"])), sent)
        let other = try self.curl(["http://127.0.45.1:\(self.metricsPort)/v1/status"])
        XCTAssertEqual(other.status, 404, "only /metrics on the TCP listener: \(other.body)")
        XCTAssertTrue(other.body.contains("serves only GET /metrics"), other.body)
        let post = try self.curl(["-X", "POST", "http://127.0.45.1:\(self.metricsPort)/metrics"])
        XCTAssertEqual(post.status, 405, post.body)

        // A client without a certificate at alpha's tunnel port: a handshake failure of an unknown peer.
        let openssl = try Command.run(
            "/usr/bin/openssl",
            ["s_client", "-connect", "127.0.45.1:\(self.alphaPort)", "-tls1_3", "-alpn", "h2"],
            timeout: .seconds(20)
        )
        let failed = try self.waitForMetrics(timeout: 10, "a handshake failure of peer unknown (openssl: \(openssl.stderr.suffix(300)))") {
            $0.samples("meshd_handshake_failures_total").contains { $0.labels["peer"] == "unknown" && $0.value >= 1 }
        }
        XCTAssertEqual(failed.families["meshd_handshake_failures_total"]?.type, "counter")
        let failures = failed.samples("meshd_handshake_failures_total")
        XCTAssertEqual(failures.map { $0.labels }, [["peer": "unknown", "reason": "no_certificate"]], "\(failures)")

        // kill -9 beta: down at once, and a reconnect once it is back; counters never go backwards.
        let beta = try XCTUnwrap(self.agents["beta"])
        beta.kill9()
        let down = try self.waitForMetrics(timeout: 15, "beta down") { $0.value("meshd_peer_up", ["peer": "beta"]) == 0 }
        XCTAssertNil(down.value("meshd_peer_rtt_seconds", ["peer": "beta"]), "no RTT for a peer that is down")
        try self.start("beta")
        let back = try self.waitForMetrics(timeout: 15, "beta up again") { $0.value("meshd_peer_up", ["peer": "beta"]) == 1 }
        XCTAssertGreaterThanOrEqual(try XCTUnwrap(back.value("meshd_tunnel_reconnects_total", ["peer": "beta"])), 1)
        XCTAssertGreaterThanOrEqual(try XCTUnwrap(back.value("meshd_bytes_total", ["peer": "beta", "direction": "sent"])), sent)
        XCTAssertEqual(back.value("meshd_streams_total", opened), 1)
    }

    // MARK: Helpers

    private func start(_ node: String) throws {
        self.agents[node] = try SpawnedProcess(
            label: node,
            executable: try BuildProducts.path("meshd"),
            arguments: ["--config", "\(node).json", "--node", node],
            directory: URL(fileURLWithPath: self.directory),
            logURL: URL(fileURLWithPath: self.directory + "/\(node)-\(self.agents.count).log")
        )
    }

    /// An HTTP exchange with curl: status, response head and body.
    private func curl(_ arguments: [String]) throws -> (status: Int, head: String, body: String) {
        let run = try Command.run("/usr/bin/curl", ["-sS", "-i", "--max-time", "10"] + arguments, timeout: .seconds(15))
        guard run.status == 0 else { throw Command.Failed(command: "curl \(arguments)", result: run) }
        let parts = run.stdout.components(separatedBy: "\r\n\r\n")
        let head = parts.first ?? ""
        let status = head.split(separator: " ").dropFirst().first.flatMap { Int($0) } ?? 0
        return (status, head, parts.dropFirst().joined(separator: "\r\n\r\n"))
    }

    /// Scrapes alpha's control socket with curl every 100 ms until `done` holds, up to `timeout` seconds.
    private func waitForMetrics(
        timeout: TimeInterval,
        _ what: String,
        until done: (PrometheusText) -> Bool
    ) throws -> PrometheusText {
        let deadline = Date().addingTimeInterval(timeout)
        var last = "no answer yet"
        while Date() < deadline {
            let response = try? self.curl(["--unix-socket", self.directory + "/run/alpha.sock", "http://meshd/metrics"])
            if let response, response.status == 200 {
                XCTAssertTrue(response.head.lowercased().contains("content-type: text/plain; version=0.0.4"), response.head)
                let text = try PrometheusText(response.body)
                if done(text) { return text }
                last = response.body
            } else if let response {
                last = response.head + "\n" + response.body
            }
            usleep(100_000)
        }
        let log = self.agents["alpha"]?.log() ?? ""
        XCTFail("alpha's /metrics did not show \(what) within \(timeout)s; last:\n\(last)\nlog:\n\(log.suffix(2000))")
        throw CancellationError()
    }
}
