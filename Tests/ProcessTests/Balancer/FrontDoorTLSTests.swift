import Foundation
import Logging
import MeshBalancer
import MeshConfig
import MeshTLS
import MeshTestSupport
import NIOConcurrencyHelpers
import NIOCore
import NIOEmbedded
import XCTest

/// TLS at the front door (`balancers.<name>.tls`): 'S' or 'N' to SSLRequest, the StartupMessage read
/// from the decrypted stream, direct TLS, plaintext clients still served. On an EmbeddedChannel for
/// the answers, and with real `openssl s_client` and `psql` for the handshakes.
final class FrontDoorTLSTests: XCTestCase {
    nonisolated(unsafe) static var certificate: FrontDoorCertificate!

    override class func setUp() {
        super.setUp()
        certificate = try! FrontDoorCertificate()
    }

    override class func tearDown() {
        certificate?.remove()
        certificate = nil
        super.tearDown()
    }

    private var certificate: FrontDoorCertificate { Self.certificate }
    private var servers: [FrontDoorTestServer] = []
    private let routed = NIOLockedValueBox<[StartupMessage]>([])

    override func tearDown() {
        for server in self.servers { server.stop() }
        self.servers = []
        super.tearDown()
    }

    static let refusal = ErrorResponse(
        code: .cannotConnectNow,
        message: #"tunnelmesh: no primary available for "pg" (db1: down since 12:01:03)"#
    )

    // MARK: The configuration

    func testContextIsMadeFromTheBalancerTLSBlock() throws {
        let config = try self.certificate.configuration()
        let context = try XCTUnwrap(try FrontDoorTLS.context(for: config.balancers["pg"]!, in: config, node: "app1"))
        XCTAssertEqual(context.audience, .anyClient(alpn: "postgresql"))

        let plain = try self.certificate.configuration(tls: nil)
        XCTAssertNil(try FrontDoorTLS.context(for: plain.balancers["pg"]!, in: plain, node: "app1"))

        // {node} is this node's name: there is no pg-db1.pem.
        XCTAssertThrowsError(try FrontDoorTLS.context(for: config.balancers["pg"]!, in: config, node: "db1")) { error in
            XCTAssertEqual(
                "\(error)",
                "\(self.certificate.directory)/pki/pg-db1.pem: certificate (balancers.pg.tls.cert) file does not exist; "
                    + "create it or fix the path in mesh.json"
            )
        }
    }

    // MARK: The answers, on an EmbeddedChannel

    func makeChannel(tls: TLSContext?) throws -> EmbeddedChannel {
        let routed = self.routed
        let channel = EmbeddedChannel()
        let session = ScriptedSession(
            channel: channel,
            route: { message in
                routed.withLockedValue { $0.append(message) }
                return .failure(Self.refusal)
            }
        )
        let handler = FrontDoorHandler(session: session, tls: tls, logger: Logger(label: "front-door-tls-test"))
        try channel.pipeline.syncOperations.addHandler(handler)
        try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 6432)).wait()
        return channel
    }

    func testSSLRequestWithTLSIsAnsweredSAndTLSStarts() throws {
        let channel = try self.makeChannel(tls: try self.certificate.context())
        let request = PostgresWire.request(PostgresProtocol.sslRequestCode)
        // Byte by byte: nothing is answered before the whole request is there.
        for index in 0..<request.readableBytes {
            try channel.writeInbound(request.getSlice(at: index, length: 1)!)
            XCTAssertEqual(try PostgresWire.readOutbound(channel).readableBytes, index == 7 ? 1 : 0, "byte \(index)")
        }
        XCTAssertNoThrow(try channel.pipeline.syncOperations.handler(type: OpenSSLHandler.self), "a TLS handler was added")
        XCTAssertNoThrow(try channel.pipeline.syncOperations.handler(type: FrontDoorHandler.self), "a front door reads behind it")

        // A client that now sends its StartupMessage in plaintext is not speaking TLS: closed, not routed.
        _ = try? channel.writeInbound(PostgresWire.appStartup())
        XCTAssertFalse(channel.isActive)
        XCTAssertTrue(self.routed.withLockedValue { $0 }.isEmpty)
    }

    func testSAnswerIsTheOnlyPlaintextByte() throws {
        let channel = try self.makeChannel(tls: try self.certificate.context())
        try channel.writeInbound(PostgresWire.request(PostgresProtocol.sslRequestCode))
        XCTAssertEqual(try PostgresWire.readOutbound(channel), ByteBuffer(string: "S"))
        XCTAssertTrue(channel.isActive)
        // The server waits for the ClientHello: it sends nothing of its own first.
        channel.embeddedEventLoop.run()
        XCTAssertEqual(try PostgresWire.readOutbound(channel).readableBytes, 0)
        _ = try? channel.finish()
    }

    func testSSLRequestWithoutTLSIsAnsweredN() throws {
        let channel = try self.makeChannel(tls: nil)
        try channel.writeInbound(PostgresWire.request(PostgresProtocol.sslRequestCode))
        XCTAssertEqual(try PostgresWire.readOutbound(channel), ByteBuffer(string: "N"))
        XCTAssertThrowsError(try channel.pipeline.syncOperations.handler(type: OpenSSLHandler.self))
        try channel.writeInbound(PostgresWire.appStartup())
        XCTAssertEqual(PostgresWire.errorResponse(in: try PostgresWire.readOutbound(channel)), Self.refusal)
        XCTAssertEqual(self.routed.withLockedValue { $0.map(\.user) }, ["app"])
    }

    func testGSSENCRequestIsAnsweredNThenSSLRequestS() throws {
        let channel = try self.makeChannel(tls: try self.certificate.context())
        try channel.writeInbound(PostgresWire.request(PostgresProtocol.gssEncRequestCode))
        XCTAssertEqual(try PostgresWire.readOutbound(channel), ByteBuffer(string: "N"))
        try channel.writeInbound(PostgresWire.request(PostgresProtocol.sslRequestCode))
        XCTAssertEqual(try PostgresWire.readOutbound(channel), ByteBuffer(string: "S"))
        _ = try? channel.finish()
    }

    func testUnencryptedBytesAfterSSLRequestAreRefused() throws {
        let channel = try self.makeChannel(tls: try self.certificate.context())
        var bytes = PostgresWire.request(PostgresProtocol.sslRequestCode)
        bytes.writeImmutableBuffer(PostgresWire.appStartup())
        try channel.writeInbound(bytes)
        let error = try XCTUnwrap(PostgresWire.errorResponse(in: try PostgresWire.readOutbound(channel)), "no 'S', an ErrorResponse")
        XCTAssertEqual(error.code, .protocolViolation)
        XCTAssertEqual(error.message, "tunnelmesh: received unencrypted data after SSL request")
        XCTAssertFalse(channel.isActive)
        XCTAssertTrue(self.routed.withLockedValue { $0 }.isEmpty)
    }

    func testPlaintextStartupIsServedByATLSBalancer() throws {
        let channel = try self.makeChannel(tls: try self.certificate.context())
        try channel.writeInbound(PostgresWire.appStartup())
        XCTAssertEqual(self.routed.withLockedValue { $0.map(\.user) }, ["app"])
        XCTAssertEqual(PostgresWire.errorResponse(in: try PostgresWire.readOutbound(channel)), Self.refusal)
    }

    func testDirectTLSWithoutTLSBlockIsClosedWithoutAnswer() throws {
        let channel = try self.makeChannel(tls: nil)
        // The start of a ClientHello record: handshake (22), TLS 1.0 record version, a length.
        try channel.writeInbound(ByteBuffer(bytes: [0x16, 0x03, 0x01, 0x02, 0x00, 0x01]))
        XCTAssertEqual(
            try PostgresWire.readOutbound(channel).readableBytes,
            0,
            "a TLS client would take an ErrorResponse for a broken record"
        )
        XCTAssertFalse(channel.isActive)
        XCTAssertTrue(self.routed.withLockedValue { $0 }.isEmpty)
    }

    // MARK: Real clients

    /// A front door on a socket; `route` refuses, unless `bridge` is given to answer in its place.
    func startServer(
        tls: Bool,
        bridge: (@Sendable (Channel, FrontDoorHandler.Route) throws -> Void)? = nil
    ) throws -> FrontDoorTestServer {
        let routed = self.routed
        let server = try FrontDoorTestServer(
            tls: tls ? try self.certificate.context() : nil,
            route: { message in
                routed.withLockedValue { $0.append(message) }
                return bridge == nil ? .failure(Self.refusal) : .success((service: "postgres", node: "db1"))
            },
            bridge: bridge ?? { _, _ in }
        )
        self.servers.append(server)
        return server
    }

    /// A StartupMessage for `openssl s_client`'s standard input.
    func startupBytes() -> Data {
        Data(PostgresWire.appStartup().readableBytesView)
    }

    func sClient(port: Int, _ options: [String]) throws -> CommandResult {
        // -ign_eof: keep reading after our StartupMessage (stdin's end) until the server closes.
        try Command.run(
            "/usr/bin/openssl",
            [
                "s_client", "-connect", "127.0.0.1:\(port)", "-CAfile", self.certificate.cert, "-verify_return_error", "-ign_eof",
                "-nocommands",
            ] + options,
            stdin: self.startupBytes(),
            timeout: .seconds(20)
        )
    }

    func testOpenSSLStartTLSPostgresGetsTheErrorResponseThroughTLS() throws {
        let server = try self.startServer(tls: true)
        let result = try self.sClient(port: server.port, ["-starttls", "postgres"])
        let output = result.stdout + result.stderr
        XCTAssert(output.contains("Verify return code: 0 (ok)"), output)
        XCTAssert(output.contains("TLSv1.3"), output)
        XCTAssert(output.contains(Self.refusal.message), "the ErrorResponse arrives through TLS: \(output)")
        XCTAssertEqual(self.routed.withLockedValue { $0.map(\.user) }, ["app"], "the StartupMessage was read decrypted")
    }

    func testOpenSSLStartTLSPostgresWithoutTLSBlockIsRefused() throws {
        let server = try self.startServer(tls: false)
        let result = try self.sClient(port: server.port, ["-starttls", "postgres"])
        let output = result.stdout + result.stderr
        XCTAssertNotEqual(result.status, 0, output)
        XCTAssert(output.contains("SSL handshake has read 1 bytes"), "only the 'N': \(output)")
        XCTAssert(output.contains("Cipher is (NONE)"), output)
        XCTAssertTrue(self.routed.withLockedValue { $0 }.isEmpty)
    }

    /// Stands in for the splice: answers the StartupMessage it is passed with an ErrorResponse that
    /// quotes it, so the test sees both directions of the routed session through TLS.
    final class EchoBackend: ChannelInboundHandler, Sendable {
        typealias InboundIn = ByteBuffer
        typealias OutboundOut = ByteBuffer

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            var bytes = self.unwrapInboundIn(data)
            var answer = ByteBuffer()
            var seen = "no StartupMessage"
            if case .packet(.startup(let message)) = try? StartupPacket.read(from: &bytes) {
                seen = "user \(message.user ?? "-") database \(message.database ?? "-")"
            }
            ErrorResponse(code: .cannotConnectNow, message: "echo backend saw \(seen)").write(to: &answer)
            context.writeAndFlush(self.wrapOutboundOut(answer), promise: nil)
            context.close(promise: nil)
        }
    }

    func testDirectTLSIsServedWithALPN() throws {
        let server = try self.startServer(tls: true) { channel, _ in
            try channel.pipeline.syncOperations.addHandler(EchoBackend())
        }
        let result = try self.sClient(port: server.port, ["-alpn", "postgresql"])
        let output = result.stdout + result.stderr
        XCTAssert(output.contains("ALPN protocol: postgresql"), output)
        XCTAssert(
            output.contains("echo backend saw user app database shop"),
            "the routed bytes are the decrypted StartupMessage: \(output)"
        )
    }

    func testDirectTLSWithoutALPNIsRefused() throws {
        let server = try self.startServer(tls: true)
        let result = try self.sClient(port: server.port, [])
        XCTAssertNotEqual(result.status, 0)
        XCTAssert((result.stdout + result.stderr).contains("no application protocol"), result.stdout + result.stderr)
        XCTAssertTrue(self.routed.withLockedValue { $0 }.isEmpty)
    }

    func psql(port: Int, _ settings: String) throws -> CommandResult {
        let bin = try PostgresCluster.binDirectory()
        var environment = ProcessInfo.processInfo.environment
        environment["PGCONNECT_TIMEOUT"] = "10"
        return try Command.run(
            "\(bin)/psql",
            ["-X", "-w", "-c", "select 1", "host=127.0.0.1 port=\(port) user=app dbname=shop \(settings)"],
            environment: environment,
            timeout: .seconds(30)
        )
    }

    func testPsqlSeesTheRefusalInEverySSLMode() throws {
        let server = try self.startServer(tls: true)
        for mode in ["sslmode=require", "sslmode=verify-full sslrootcert=\(self.certificate.cert)", "sslmode=prefer", "sslmode=disable"] {
            let result = try self.psql(port: server.port, mode)
            XCTAssertEqual(result.status, 2, "\(mode): \(result.stderr)")
            XCTAssert(result.stderr.contains("FATAL:  \(Self.refusal.message)"), "\(mode): \(result.stderr)")
        }
    }

    func testPsqlRequireWithoutTLSBlockIsRefusedClearly() throws {
        let server = try self.startServer(tls: false)
        let required = try self.psql(port: server.port, "sslmode=require")
        XCTAssertEqual(required.status, 2)
        XCTAssert(required.stderr.contains("server does not support SSL, but SSL was required"), required.stderr)
        let preferred = try self.psql(port: server.port, "sslmode=prefer")
        XCTAssert(preferred.stderr.contains("FATAL:  \(Self.refusal.message)"), "prefer falls back to plaintext: \(preferred.stderr)")
    }
}
