import Foundation
import Logging
import MeshControl
import MeshControlClient
import MeshControlModel
import MeshTestSupport
import MeshTunnel
import NIOConcurrencyHelpers
import NIOCore
import NIOHTTP1
import NIOPosix
import XCTest

/// The control server on a real Unix socket in a temp directory, spoken to by the real client.
final class ControlServerTests: XCTestCase {
    private var directory: String!
    private var server: ControlServer!
    private var source: FixedDataSource!
    private let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
    /// Set in setUp: XCTest on Linux makes every test's instance when the run starts, so a property
    /// initialiser would date from then, minutes before this test runs in the whole suite.
    private var started: Date!

    override func setUp() async throws {
        self.directory = try TemporaryDirectory.make()
        self.started = Date(timeIntervalSinceNow: -125)
        var up = PeerStatus(name: "db1", address: "127.0.1.1:7443", dialer: true, state: .up, since: Date(timeIntervalSinceNow: -60))
        up.rttSeconds = 0.000_3
        up.bytesSent = 4096
        var down = PeerStatus(name: "db2", address: "127.0.1.2:7443", dialer: true, state: .down, since: Date())
        down.lastError = "connection refused"
        self.source = FixedDataSource(name: "app1", peers: [up, down], answers: ["db1": .microseconds(250)])
        let facts = AgentFacts.fixture(
            startedAt: self.started,
            configSHA256: String(repeating: "ab", count: 32),
            certificateNotAfter: Date(timeIntervalSinceNow: 10 * 86_400 + 60),
            services: [ServiceInfo(name: "echo", role: .forward, listen: "127.0.0.1:15001", to: "echo@db1")]
        )
        self.server = ControlServer(
            socketPath: self.directory + "/run/control.sock",
            api: ControlAPI(source: self.source, facts: facts),
            group: self.group,
            logger: Logger(label: "test")
        )
        try await self.server.start()
    }

    override func tearDown() async throws {
        await self.server?.stop()
        try? await self.group.shutdownGracefully()
        if let directory { try? FileManager.default.removeItem(atPath: directory) }
    }

    private var client: ControlClient { ControlClient(socketPath: self.server.socketPath, timeout: .seconds(10), group: self.group) }

    func testSocketIsCreatedInAMissingDirectoryWithMode0660() throws {
        var info = stat()
        XCTAssertEqual(lstat(self.server.socketPath, &info), 0)
        XCTAssertEqual(info.st_mode & S_IFMT, S_IFSOCK)
        XCTAssertEqual(info.st_mode & 0o777, 0o660)
    }

    func testStatus() async throws {
        let status: AgentStatus = try await self.client.get("/v1/status")
        XCTAssertEqual(status.node, "app1")
        XCTAssertEqual(status.mesh, "demo")
        XCTAssertEqual(status.version, "0.1.0")
        // Started 125 s before the server; a loaded machine may take a while between setUp and the request.
        XCTAssertTrue((125...600).contains(status.uptimeSeconds), "uptime \(status.uptimeSeconds)")
        XCTAssertEqual(status.configSHA256, String(repeating: "ab", count: 32))
        XCTAssertEqual(status.peersUp, 1)
        XCTAssertEqual(status.peersTotal, 2)
        XCTAssertEqual(status.certificateDaysLeft, 10)
        XCTAssertTrue(status.lastReload.ok)
    }

    func testPeersServicesBackends() async throws {
        let peers: [PeerInfo] = try await self.client.get("/v1/peers")
        XCTAssertEqual(peers.map(\.name), ["db1", "db2"])
        XCTAssertEqual(peers.map(\.state), ["up", "down"])
        XCTAssertEqual(peers[0].bytesSent, 4096)
        XCTAssertEqual(peers[1].lastError, "connection refused")
        let one: PeerInfo = try await self.client.get("/v1/peers/db2")
        XCTAssertEqual(one, peers[1])
        let services: [ServiceInfo] = try await self.client.get("/v1/services")
        XCTAssertEqual(services.map(\.to), ["echo@db1"])
        let backends: [BackendInfo] = try await self.client.get("/v1/backends")
        XCTAssertEqual(backends, [])
    }

    func testPingReturnsOneSamplePerRoundTrip() async throws {
        let report: PingReport = try await self.client.post("/v1/peers/db1/ping?count=3")
        XCTAssertEqual(report.peer, "db1")
        XCTAssertEqual(report.samplesSeconds, [0.000_25, 0.000_25, 0.000_25])
        XCTAssertEqual(self.source.pingCount, 3)
        let (_, body) = try await self.client.send(.POST, "/v1/peers/db1/ping")
        let raw = try XCTUnwrap(JSONSerialization.jsonObject(with: body) as? [String: Any])
        XCTAssertEqual(raw["count"] as? Int, 1, "count defaults to 1")
        XCTAssertEqual(raw["avg_seconds"] as? Double, 0.000_25)
    }

    func testErrorsAreJSONWithStatusCodes() async throws {
        try await self.expect(.POST, "/v1/peers/db2/ping", 503, containing: "no tunnel to db2 is up")
        try await self.expect(.POST, "/v1/peers/db2/ping", 503, containing: "last error: connection refused")
        try await self.expect(.POST, "/v1/peers/nope/ping", 404, containing: "no peer named \"nope\" (peers of app1: db1, db2)")
        try await self.expect(.GET, "/v1/peers/nope", 404, containing: "no peer named")
        try await self.expect(.POST, "/v1/peers/db1/ping?count=0", 400, containing: "count must be a whole number from 1 to 100")
        try await self.expect(.POST, "/v1/peers/db1/ping?count=abc", 400, containing: "not \"abc\"")
        try await self.expect(.GET, "/v1/peers/db1/ping", 405, containing: "takes POST, not GET")
        try await self.expect(.DELETE, "/v1/status", 405, containing: "takes GET")
        try await self.expect(.GET, "/v2/status", 404, containing: "no endpoint /v2/status")
        XCTAssertEqual(self.source.pingCount, 2, "refused requests never reach the tunnel")

        do {
            let _: [PeerInfo] = try await self.client.get("/v1/nothing")
            XCTFail("a 404 must throw")
        } catch {
            guard case .api(let status, let message) = error else { return XCTFail("\(error)") }
            XCTAssertEqual(status, 404)
            XCTAssertTrue(message.hasPrefix("no endpoint /v1/nothing"), message)
        }
    }

    /// The dry-run form of the reload endpoint gets the request body (the candidate mesh.json) and
    /// its name; a plain reload takes neither, and a body over the limit is refused, not buffered.
    func testDryRunGetsTheDocumentAndAPlainReloadRefusesOne() async throws {
        let seen = NIOLockedValueBox<[DryRunRequest]>([])
        let changes = [ConfigChange(.tunnel, .added, "db3", detail: "this node dials it at 127.0.1.4:7443")]
        self.server.api.onDryRun { request in
            seen.withLockedValue { $0.append(request) }
            return ReloadOutcome(ok: true, at: Date(), dryRun: true, changes: changes)
        }
        let document = Data(#"{"mesh": "demo"}"#.utf8)
        let planned: ReloadOutcome = try await self.client.post("/v1/reload?dry_run=true&file=%2Ftmp%2Fnext.json", body: document)
        XCTAssertEqual(planned.changes, changes)
        XCTAssertTrue(planned.dryRun)
        let own: ReloadOutcome = try await self.client.post("/v1/reload?dry_run=1")
        XCTAssertEqual(own.changes, changes)
        XCTAssertEqual(
            seen.withLockedValue { $0 },
            [DryRunRequest(document: document, file: "/tmp/next.json"), DryRunRequest(document: nil, file: nil)]
        )

        try await self.expect(.POST, "/v1/reload?dry_run=yes", 400, containing: "dry_run must be true or 1, not \"yes\"")
        let (status, body) = try await self.client.send(.POST, "/v1/reload", body: document)
        XCTAssertEqual(status.code, 400)
        XCTAssertTrue(String(decoding: body, as: UTF8.self).contains("only with dry_run=true"), String(decoding: body, as: UTF8.self))
        let (tooLarge, _) = try await self.client.send(
            .POST,
            "/v1/reload?dry_run=true",
            body: Data(repeating: 0x20, count: ControlAPI.maxBodyBytes + 1)
        )
        XCTAssertEqual(tooLarge.code, 413)
        XCTAssertEqual(seen.withLockedValue { $0.count }, 2, "refused requests never reach the planner")
    }

    func testSecondServerOnTheSameSocketIsRefusedAndStaleSocketIsReplaced() async throws {
        let second = ControlServer(
            socketPath: self.server.socketPath,
            api: ControlAPI(
                source: self.source,
                facts: .fixture(configFile: "x", configSHA256: "")
            ),
            group: self.group,
            logger: Logger(label: "test")
        )
        do {
            try await second.start()
            XCTFail("a live socket must not be taken over")
        } catch let error as ControlSocketError {
            XCTAssertTrue("\(error)".contains("is another meshd running for this node?"), "\(error)")
        }
        let _: AgentStatus = try await self.client.get("/v1/status")  // the first one still serves

        // A socket file left by a dead process (bound, never listening) is replaced.
        await self.server.stop()
        XCTAssertFalse(FileManager.default.fileExists(atPath: self.server.socketPath), "stop removes the socket file")
        let stale = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &address.sun_path) { $0.copyBytes(from: self.server.socketPath.utf8) }
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(stale, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        XCTAssertEqual(bound, 0)
        close(stale)
        XCTAssertTrue(FileManager.default.fileExists(atPath: self.server.socketPath))
        try await second.start()
        let status: AgentStatus = try await self.client.get("/v1/status")
        XCTAssertEqual(status.configFile, "x")
        await second.stop()
    }

    func testIdleConnectionIsClosedButALongRequestIsNot() async throws {
        await self.server.stop()
        let slow = FixedDataSource(name: "app1", peers: self.source.peerStatuses(), answers: ["db1": .milliseconds(1_500)])
        let server = ControlServer(
            socketPath: self.directory + "/idle.sock",
            api: ControlAPI(
                source: slow,
                facts: .fixture(configFile: "x", configSHA256: "")
            ),
            group: self.group,
            logger: Logger(label: "test"),
            idleTimeout: .milliseconds(300)
        )
        try await server.start()
        defer { Task { await server.stop() } }

        // A client that connects and says nothing is disconnected after the idle timeout.
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(fd) }
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &address.sun_path) { $0.copyBytes(from: server.socketPath.utf8) }
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        XCTAssertEqual(connected, 0)
        var timeout = timeval(tv_sec: 5, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        let started = Date()
        var byte: UInt8 = 0
        XCTAssertEqual(recv(fd, &byte, 1, 0), 0, "the server closes the idle connection (EOF), not a 5 s receive timeout")
        XCTAssertLessThan(Date().timeIntervalSince(started), 3)

        // A ping that takes 1.5 s, five idle timeouts, still gets its answer.
        let client = ControlClient(socketPath: server.socketPath, timeout: .seconds(10), group: self.group)
        let report: PingReport = try await client.post("/v1/peers/db1/ping")
        XCTAssertEqual(report.samplesSeconds, [1.5])
    }

    func testUnreachableSocketNamesThePath() async throws {
        let client = ControlClient(socketPath: self.directory + "/missing.sock", timeout: .seconds(5), group: self.group)
        do {
            let _: AgentStatus = try await client.get("/v1/status")
            XCTFail("no agent listens there")
        } catch {
            guard case .unreachable = error else { return XCTFail("\(error)") }
            XCTAssertTrue("\(error)".contains(self.directory + "/missing.sock"), "\(error)")
            XCTAssertTrue("\(error)".contains("systemctl status meshd"), "\(error)")
        }
    }

    private func expect(
        _ method: HTTPMethod,
        _ path: String,
        _ status: UInt,
        containing text: String,
        file: StaticString = #filePath,
        line: UInt = #line
    ) async throws {
        let (answer, body) = try await self.client.send(method, path)
        XCTAssertEqual(answer.code, status, "\(method) \(path)", file: file, line: line)
        let error = try ControlJSON.decoder().decode(ControlErrorBody.self, from: body)
        XCTAssertTrue(error.error.contains(text), "\(error.error)", file: file, line: line)
    }
}
