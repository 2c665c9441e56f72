import Foundation
import Logging
import MeshBalancer
import MeshTestSupport
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import XCTest

/// Whole sessions through a TLS front door to a real PostgreSQL 15, with real psql: SCRAM end to
/// end over `sslmode=require`, and a CancelRequest routed by the key `CancelRoutes` learnt from the
/// server's BackendKeyData. The tunnel is not part of this: `DirectBridge` joins the client to the
/// server with a plain TCP connection where meshd uses `MeshNode.bridge`.
final class FrontDoorSessionTests: XCTestCase {
    private var root: String?
    private var clusters: [PostgresCluster] = []
    private var certificate: FrontDoorCertificate?
    private var server: FrontDoorTestServer?
    /// What the client ends of the sessions saw: "input closed" (a clean end, TLS close_notify
    /// included) and any error (an unclean TLS shutdown, say).
    private let events = NIOLockedValueBox<[String]>([])

    override func tearDown() {
        self.server?.stop()
        for cluster in self.clusters { cluster.stop() }
        if let root = self.root { PostgresCluster.removeRoot(root) }
        self.certificate?.remove()
        super.tearDown()
    }

    /// A primary with a SCRAM user "app" (password "secret") and a TLS front door routing to it.
    func start() throws -> (port: Int, routes: CancelRoutes, cancels: NIOLockedValueBox<[String]>) {
        let events = self.events
        let root = try PostgresCluster.makeRoot()
        self.root = root
        let primary = try PostgresCluster.primary(name: "db1", in: root, hba: ["host all app 127.0.0.1/32 scram-sha-256"])
        self.clusters.append(primary)
        try primary.sql("SET password_encryption = 'scram-sha-256'; CREATE ROLE app LOGIN PASSWORD 'secret'")
        let certificate = try FrontDoorCertificate()
        self.certificate = certificate

        let routes = CancelRoutes(logger: Logger(label: "cancel-routes"))
        let cancels = NIOLockedValueBox<[String]>([])
        let ports = ["db1": primary.port]
        let server = try FrontDoorTestServer(
            tls: try certificate.context(),
            route: { _ in .success((service: "postgres", node: "db1")) },
            bridge: { channel, route in
                // As meshd does: the watcher goes on before the splice that writes the server's bytes.
                let session = ObjectIdentifier(channel)
                try channel.pipeline.syncOperations.addHandler(routes.watcher(session: session, route: route))
                channel.closeFuture.whenComplete { _ in routes.forget(session: session) }
                try DirectBridge.join(channel, toPort: ports[route.node]!, events: events)
            },
            cancel: { key in
                guard let route = routes.route(for: key) else {
                    cancels.withLockedValue { $0.append("unknown \(key)") }
                    return
                }
                cancels.withLockedValue { $0.append("\(route.service)@\(route.node)") }
                DirectBridge.sendCancel(key, toPort: ports[route.node]!)
            }
        )
        self.server = server
        return (server.port, routes, cancels)
    }

    func psqlEnvironment() -> [String: String] {
        var environment = ProcessInfo.processInfo.environment
        environment["PGPASSWORD"] = "secret"
        environment["PGCONNECT_TIMEOUT"] = "10"
        return environment
    }

    func conninfo(_ port: Int, _ extra: String = "") -> String {
        "host=127.0.0.1 port=\(port) user=app dbname=postgres sslmode=require \(extra)"
    }

    func testSCRAMLoginOverTLSAndWrongPassword() throws {
        let (port, routes, _) = try self.start()
        let bin = try PostgresCluster.binDirectory()
        let result = try Command.run(
            "\(bin)/psql",
            ["-X", "-w", "-A", "-t", "-c", "\\conninfo", "-c", "select current_user, pg_is_in_recovery()", self.conninfo(port)],
            environment: self.psqlEnvironment(),
            timeout: .seconds(30)
        )
        XCTAssertEqual(result.status, 0, result.stderr)
        XCTAssert(result.stdout.contains("SSL connection (protocol: TLSv1.3"), result.stdout)
        XCTAssert(result.stdout.contains("app|f"), result.stdout)

        var wrong = self.psqlEnvironment()
        wrong["PGPASSWORD"] = "not the password"
        let refused = try Command.run(
            "\(bin)/psql",
            ["-X", "-w", "-c", "select 1", self.conninfo(port)],
            environment: wrong,
            timeout: .seconds(30)
        )
        XCTAssertEqual(refused.status, 2)
        XCTAssert(refused.stderr.contains(#"password authentication failed for user "app""#), "PostgreSQL's own error: \(refused.stderr)")

        XCTAssert(Self.waitUntil { routes.count == 0 }, "no key outlives its session (\(routes.count) left)")
        // The first session ended with psql's Terminate and close_notify, the second with the server's
        // FATAL and our close_notify: both cleanly, with no TLS error.
        let events = self.events.withLockedValue { $0 }
        XCTAssertEqual(events.filter { $0.hasPrefix("error") }, [], "\(events)")
        XCTAssert(events.contains("input closed"), "\(events)")
    }

    func testCancelReachesTheBackendThatIssuedTheKey() throws {
        let (port, routes, cancels) = try self.start()
        let bin = try PostgresCluster.binDirectory()
        let sleeper = try Command.start(
            "\(bin)/psql",
            ["-X", "-w", "-c", "select pg_sleep(30)", self.conninfo(port)],
            environment: self.psqlEnvironment()
        )
        XCTAssert(Self.waitUntil { routes.count == 1 }, "the session's key was learnt")
        Thread.sleep(forTimeInterval: 0.3)  // let the query start

        let sent = Date()
        sleeper.signal(SIGINT)  // psql sends a CancelRequest, through the front door
        let result = sleeper.wait(timeout: .seconds(10))
        XCTAssertLessThan(Date().timeIntervalSince(sent), 1, "cancelled within a second")
        XCTAssert(result.stderr.contains("canceling statement due to user request"), result.stderr)
        XCTAssertEqual(cancels.withLockedValue { $0 }, ["postgres@db1"])
        XCTAssert(Self.waitUntil { routes.count == 0 }, "the key went with the session")
    }

    func testCancelWithAnUnknownKeyIsDropped() throws {
        let (port, _, cancels) = try self.start()
        let channel = try ClientBootstrap(group: self.server!.group).connect(host: "127.0.0.1", port: port).wait()
        var request = ByteBuffer()
        BackendKeyData(processID: 1, secretKey: Array(repeating: 7, count: 4)).writeCancelRequest(to: &request)
        try channel.writeAndFlush(request).wait()
        XCTAssertNoThrow(try channel.closeFuture.wait(), "the front door closes after a cancel, answering nothing")
        XCTAssertEqual(cancels.withLockedValue { $0 }, ["unknown backend 1 (4-byte key)"])
    }

    static func waitUntil(timeout: TimeInterval = 10, _ condition: () -> Bool) -> Bool {
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            if condition() { return true }
            Thread.sleep(forTimeInterval: 0.02)
        }
        return condition()
    }
}

/// Test glue standing in for the tunnel: joins a front-door channel to a new TCP connection to a
/// local PostgreSQL on the same event loop, bytes passed both ways as they come; an end of input
/// becomes a half-close of the other side, and a close closes the other side.
enum DirectBridge {
    static func join(_ client: Channel, toPort port: Int, events: NIOLockedValueBox<[String]>) throws {
        let clientSide = PipeEnd(events: events)
        let serverSide = PipeEnd(events: nil)
        clientSide.partner = serverSide
        serverSide.partner = clientSide
        try client.pipeline.syncOperations.addHandler(clientSide)
        ClientBootstrap(group: client.eventLoop)
            .channelOption(.allowRemoteHalfClosure, value: true)
            .channelInitializer { server in
                server.eventLoop.makeCompletedFuture { try server.pipeline.syncOperations.addHandler(serverSide) }
            }
            .connect(host: "127.0.0.1", port: port)
            .whenFailure { _ in client.close(promise: nil) }
    }

    /// PostgreSQL's cancel: a new connection that sends the CancelRequest and is closed by the server.
    static func sendCancel(_ key: BackendKeyData, toPort port: Int) {
        let group = MultiThreadedEventLoopGroup.singleton
        ClientBootstrap(group: group).connect(host: "127.0.0.1", port: port).whenSuccess { channel in
            var request = ByteBuffer()
            key.writeCancelRequest(to: &request)
            channel.writeAndFlush(request, promise: nil)
        }
    }

    /// One end of the pipe. Both ends live on one event loop, so they call each other directly.
    final class PipeEnd: ChannelInboundHandler, @unchecked Sendable {
        // @unchecked: used only on the one event loop both channels share.
        typealias InboundIn = ByteBuffer
        typealias OutboundOut = ByteBuffer

        var partner: PipeEnd?
        private let events: NIOLockedValueBox<[String]>?
        private var context: ChannelHandlerContext?
        /// What arrived for this end before its channel was there (the StartupMessage, typically).
        private var held: [ByteBuffer] = []
        private var heldEnd = false
        private var heldClose = false

        init(events: NIOLockedValueBox<[String]>?) {
            self.events = events
        }

        func handlerAdded(context: ChannelHandlerContext) {
            self.context = context
            for buffer in self.held { context.write(self.wrapOutboundOut(buffer), promise: nil) }
            context.flush()
            self.held = []
            if self.heldClose { context.close(promise: nil) } else if self.heldEnd { self.endOutput() }
        }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            self.partner?.send(self.unwrapInboundIn(data))
        }

        func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
            if case .some(.inputClosed) = event as? ChannelEvent {
                self.events?.withLockedValue { $0.append("input closed") }
                self.partner?.endOutput()
            }
            context.fireUserInboundEventTriggered(event)
        }

        func channelInactive(context: ChannelHandlerContext) {
            self.context = nil
            self.partner?.close()
            self.partner = nil
        }

        func errorCaught(context: ChannelHandlerContext, error: any Error) {
            self.events?.withLockedValue { $0.append("error: \(error)") }
            context.close(promise: nil)
        }

        private func send(_ buffer: ByteBuffer) {
            guard let context = self.context else { return self.held.append(buffer) }
            context.writeAndFlush(self.wrapOutboundOut(buffer), promise: nil)
        }

        private func endOutput() {
            guard let context = self.context else {
                self.heldEnd = true
                return
            }
            context.close(mode: .output, promise: nil)
        }

        private func close() {
            guard let context = self.context else {
                self.heldClose = true
                return
            }
            context.close(promise: nil)
        }
    }
}
