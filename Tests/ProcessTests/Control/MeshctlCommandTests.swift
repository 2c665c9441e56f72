import Foundation
import Logging
import MeshControl
import MeshControlModel
import MeshTestSupport
import MeshTunnel
import NIOConcurrencyHelpers
import NIOPosix
import XCTest

/// The built `meshctl` binary against a control server in this process: exit codes, the socket
/// path in messages, and the SO_PEERCRED check with a real unprivileged user.
final class MeshctlCommandTests: XCTestCase {
    static let user = "tmctltest"
    static let group = "tmctlgrp"

    private var directory: String!
    private var meshctl: String!
    private let loop = MultiThreadedEventLoopGroup(numberOfThreads: 1)
    private let logged = LogRecorder()

    override func setUp() async throws {
        self.directory = try TemporaryDirectory.make()
        // The unprivileged user must reach the socket's directory and the binary.
        chmod(self.directory, 0o755)
        self.meshctl = self.directory + "/meshctl"
        try FileManager.default.copyItem(atPath: try BuildProducts.path("meshctl"), toPath: self.meshctl)
    }

    override func tearDown() async throws {
        try? await self.loop.shutdownGracefully()
        if let directory { try? FileManager.default.removeItem(atPath: directory) }
    }

    private func startServer() async throws -> ControlServer {
        var up = PeerStatus(name: "db1", address: "127.0.1.1:7443", dialer: true, state: .up, since: Date())
        up.rttSeconds = 0.000_2
        let down = PeerStatus(name: "db2", address: "127.0.1.2:7443", dialer: true, state: .down, since: Date())
        let source = FixedDataSource(name: "app1", peers: [up, down], answers: ["db1": .microseconds(300)])
        let facts = AgentFacts.fixture()
        let recorder = self.logged
        let server = ControlServer(
            socketPath: self.directory + "/control.sock",
            api: ControlAPI(source: source, facts: facts),
            group: self.loop,
            logger: Logger(label: "control") { _ in recorder }
        )
        try await server.start()
        return server
    }

    func testNoAgentExits3NamingTheSocket() throws {
        let socket = self.directory + "/nobody-here.sock"
        let result = try Command.run(self.meshctl, ["--control", socket, "status"])
        XCTAssertEqual(result.status, 3, result.stderr)
        XCTAssertTrue(result.stderr.contains(socket), result.stderr)
        XCTAssertTrue(result.stderr.contains("systemctl status meshd"), result.stderr)
        XCTAssertEqual(result.stdout, "")

        // The same when the socket comes from mesh.json, and after the command name.
        let config = self.directory + "/mesh.json"
        try Data(ControlFixtures.meshJSON.utf8).write(to: URL(fileURLWithPath: config))
        let fromConfig = try Command.run(self.meshctl, ["peers", "--config", config, "--node", "db2", "--json"])
        XCTAssertEqual(fromConfig.status, 3, fromConfig.stderr)
        XCTAssertTrue(fromConfig.stderr.contains(self.directory + "/run/db2.sock"), fromConfig.stderr)
    }

    func testUsageAndConfigErrorsExit2() throws {
        let both = try Command.run(self.meshctl, ["--control", "/x.sock", "--config", "/y.json", "--node", "a", "status"])
        XCTAssertEqual(both.status, 2, both.stderr)
        XCTAssertTrue(both.stderr.contains("either --control PATH or --config PATH --node NAME"), both.stderr)
        let config = self.directory + "/mesh.json"
        try Data(ControlFixtures.meshJSON.utf8).write(to: URL(fileURLWithPath: config))
        let unknown = try Command.run(self.meshctl, ["--config", config, "--node", "db9", "status"])
        XCTAssertEqual(unknown.status, 2, unknown.stderr)
        XCTAssertTrue(unknown.stderr.contains("no node \"db9\" (declared: app1, db1, db2)"), unknown.stderr)
        let broken = try Command.run(self.meshctl, ["--config", self.directory + "/absent.json", "--node", "db1", "status"])
        XCTAssertEqual(broken.status, 2, broken.stderr)
        XCTAssertTrue(broken.stderr.contains("absent.json"), broken.stderr)
    }

    func testReadCommandsAgainstTheServer() async throws {
        let server = try await self.startServer()
        defer { Task { await server.stop() } }
        let socket = server.socketPath
        let peers = try Command.run(self.meshctl, ["--control", socket, "peers"], environment: [:])
        XCTAssertEqual(peers.status, 1, "db2 is down: degraded\n\(peers.stderr)")
        // SINCE's width follows the live clock ("just now", "3s ago"), so only the order is fixed.
        XCTAssertTrue(peers.stdout.hasPrefix("NAME  ADDRESS         STATE  SINCE"), peers.stdout)
        let header = peers.stdout.split(separator: "\n").first.map(String.init) ?? ""
        XCTAssertEqual(
            header.split(separator: " ", omittingEmptySubsequences: true).map(String.init),
            [
                "NAME", "ADDRESS", "STATE", "SINCE", "RTT", "STREAMS", "TX", "RX", "LAST", "ERROR", "AUTHENTICATED", "AUTH", "EXPIRES",
                "CERT", "EXPIRES",
            ],
            header
        )
        XCTAssertFalse(peers.stdout.contains("\u{1B}["), "no colour when stdout is not a terminal")
        let json = try Command.run(self.meshctl, ["peers", "--json", "--control", socket])
        XCTAssertEqual(json.status, 1)
        let decoded = try ControlJSON.decoder().decode([PeerInfo].self, from: Data(json.stdout.utf8))
        XCTAssertEqual(decoded.map(\.state), ["up", "down"])

        let ping = try Command.run(self.meshctl, ["--control", socket, "ping", "db1", "-c", "2"])
        XCTAssertEqual(ping.status, 0, ping.stderr)
        XCTAssertTrue(ping.stdout.contains("db1: seq=2 time=0.3ms"), ping.stdout)
        XCTAssertTrue(ping.stdout.contains("2 round trips, min/avg/max = 0.300/0.300/0.300 ms"), ping.stdout)
        let pingDown = try Command.run(self.meshctl, ["--control", socket, "ping", "db2"])
        XCTAssertEqual(pingDown.status, 1, pingDown.stderr)
        XCTAssertTrue(pingDown.stderr.contains("no tunnel to db2 is up"), pingDown.stderr)
        let pingUnknown = try Command.run(self.meshctl, ["--control", socket, "ping", "db7"])
        XCTAssertEqual(pingUnknown.status, 2, pingUnknown.stderr)

        let services = try Command.run(self.meshctl, ["--control", socket, "services"])
        XCTAssertEqual(services.status, 0, services.stderr)
        XCTAssertEqual(services.stdout, "this node serves no services and runs no forwards\n")
        let backends = try Command.run(self.meshctl, ["--control", socket, "backends", "--json"])
        XCTAssertEqual(backends.status, 0, backends.stderr)
        XCTAssertEqual(backends.stdout, "[\n\n]\n")
        let status = try Command.run(self.meshctl, ["--control", socket, "status", "--json"])
        XCTAssertEqual(status.status, 1, status.stderr)
        XCTAssertEqual(try ControlJSON.decoder().decode(AgentStatus.self, from: Data(status.stdout.utf8)).peersUp, 1)
    }

    /// Another user is refused by SO_PEERCRED even when the file mode would let it connect, and
    /// is let in once it is a member of the socket's group.
    func testUnprivilegedUserIsRefusedUnlessInTheSocketsGroup() async throws {
        try Self.ensureUserAndGroup()
        let server = try await self.startServer()
        defer { Task { await server.stop() } }
        let socket = server.socketPath
        let asUser = ["--reuid=\(Self.user)", "--regid=\(Self.user)", "--init-groups", self.meshctl!, "--control", socket, "status"]

        // 0660 root:root: the kernel itself refuses the connect.
        let blocked = try Command.run("/usr/bin/setpriv", asUser)
        XCTAssertEqual(blocked.status, 3, blocked.stderr)
        XCTAssertTrue(blocked.stderr.contains("Permission denied"), blocked.stderr)

        // World-writable by mistake: the connect succeeds, SO_PEERCRED refuses with 403.
        chmod(socket, 0o666)
        let refused = try Command.run("/usr/bin/setpriv", asUser)
        XCTAssertEqual(refused.status, 3, refused.stderr)
        XCTAssertTrue(refused.stderr.contains("meshd refused this user on \(socket)"), refused.stderr)
        let uid = try XCTUnwrap(UInt32(Command.check("/usr/bin/id", ["-u", Self.user]).trimmingCharacters(in: .whitespacesAndNewlines)))
        XCTAssertTrue(
            self.logged.messages.contains { $0.level == .warning && $0.text.contains("refused a client with uid \(uid)") },
            "\(self.logged.messages)"
        )

        // The socket's group is one the user belongs to (supplementary): allowed.
        chmod(socket, 0o660)
        try Command.check("/usr/bin/chgrp", [Self.group, socket])
        let allowed = try Command.run("/usr/bin/setpriv", asUser)
        XCTAssertEqual(allowed.status, 1, "allowed, and degraded because db2 is down\n\(allowed.stderr)")
        XCTAssertTrue(allowed.stdout.contains("node           app1"), allowed.stdout)
    }

    static func ensureUserAndGroup() throws {
        guard getuid() == 0 else { throw XCTSkip("creating a test user needs root") }
        if getgrnam(self.group) == nil { try Command.check("/usr/sbin/groupadd", [self.group]) }
        if getpwnam(self.user) == nil {
            try Command.check("/usr/sbin/useradd", ["-M", "-s", "/usr/sbin/nologin", "-G", self.group, self.user])
        } else {
            try Command.check("/usr/sbin/usermod", ["-a", "-G", self.group, self.user])
        }
    }
}

/// Keeps every log message, so a test can assert what the server logged.
final class LogRecorder: LogHandler, @unchecked Sendable {
    struct Entry: Sendable {
        var level: Logger.Level
        var text: String
    }

    private let entries = NIOLockedValueBox<[Entry]>([])
    var metadata: Logger.Metadata = [:]
    var logLevel: Logger.Level = .trace

    var messages: [Entry] { self.entries.withLockedValue { $0 } }

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { self.metadata[key] }
        set { self.metadata[key] = newValue }
    }

    func log(event: LogEvent) {
        self.entries.withLockedValue { $0.append(Entry(level: event.level, text: "\(event.message)")) }
    }
}
