import Foundation
import Logging
import MeshBalancer
import MeshControl
import MeshControlClient
import MeshControlModel
import MeshTestSupport
import MeshTunnel
import NIOPosix
import XCTest

/// `GET /v1/backends` through the real control server and client, and the built `meshctl backends`
/// against it: rows, text, JSON and exit codes (0 every backend up, 1 degraded, 3 unreachable).
final class BackendsCommandTests: XCTestCase {
    private var directory: String!
    private var server: ControlServer!
    private var fixtures: BalancerFixtures!
    private let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)

    override func setUp() async throws {
        self.directory = try TemporaryDirectory.make()
        self.fixtures = try BalancerFixtures()
        let source = FixedDataSource(name: "app1", peers: [], answers: [:])
        let facts = AgentFacts.fixture()
        self.server = ControlServer(
            socketPath: self.directory + "/control.sock",
            api: ControlAPI(source: source, facts: facts, balancers: self.fixtures.view),
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

    func testEndpointServesTheViewsRows() async throws {
        let client = ControlClient(socketPath: self.server.socketPath, timeout: .seconds(10), group: self.group)
        let rows: [BackendInfo] = try await client.get("/v1/backends")
        // Dates travel in whole seconds (ISO 8601); everything else as the view has it.
        let expected = self.fixtures.view.backends()
        XCTAssertEqual(rows.map(\.node), expected.map(\.node))
        XCTAssertEqual(rows.map(\.state), ["up", "up", "down", "unknown", "unknown", "up"])
        XCTAssertEqual(rows.map(\.lsn), expected.map(\.lsn))
        XCTAssertEqual(rows.map(\.connectionsRW), [3, 0, 0, 0, 0, 0])
        XCTAssertEqual(rows.map(\.reportAgeSeconds), expected.map(\.reportAgeSeconds))
    }

    func testMeshctlBackendsExitCodes() throws {
        let meshctl = try BuildProducts.path("meshctl")
        let socket = self.server.socketPath
        let degraded = try Command.run(meshctl, ["--control", socket, "backends"], environment: [:])
        XCTAssertEqual(degraded.status, 1, "db3 is down, db4 and db5 unknown\n\(degraded.stderr)")
        XCTAssertEqual(degraded.stdout, BackendsText.render(self.fixtures.view.backends(), style: .plain))
        XCTAssertTrue(degraded.stdout.hasPrefix("BALANCER  NODE  ROLE     STATE    TIMELINE"), degraded.stdout)

        let json = try Command.run(meshctl, ["--control", socket, "backends", "--json"])
        XCTAssertEqual(json.status, 1, json.stderr)
        let decoded = try ControlJSON.decoder().decode([BackendInfo].self, from: Data(json.stdout.utf8))
        XCTAssertEqual(decoded.map(\.state), ["up", "up", "down", "unknown", "unknown", "up"])

        // db3 recovers and a reload drops db4 and the reports balancer: every backend is up.
        self.fixtures.record(
            "postgres",
            "db3",
            sequence: 3,
            secondsAgo: 0.1,
            .up(.init(role: .standby, timeline: 2, lsn: .init(0x3_0000_0000)))
        )
        self.fixtures.reload(try BalancerFixtures.reloadedConfig())
        let healthy = try Command.run(meshctl, ["--control", socket, "backends"], environment: [:])
        XCTAssertEqual(healthy.status, 0, healthy.stderr)
        XCTAssertTrue(healthy.stdout.hasPrefix("NODE  ROLE     STATE  TIMELINE"), healthy.stdout)
        XCTAssertEqual(healthy.stdout.split(separator: "\n").count, 4, healthy.stdout)

        let unreachable = try Command.run(meshctl, ["--control", self.directory + "/nobody.sock", "backends"])
        XCTAssertEqual(unreachable.status, 3, unreachable.stderr)
    }
}
