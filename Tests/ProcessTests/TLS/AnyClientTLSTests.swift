import Foundation
import MeshConfig
import MeshTestSupport
import NIOCore
import NIOPosix
import XCTest

@testable import MeshTLS

/// The `.anyClient` server context (a balancer's own certificate) on real sockets against real
/// `openssl s_client`: no client certificate, TLS 1.3 or 1.2, ALPN "postgresql" selected or refused,
/// and each direction closed on its own.
final class AnyClientTLSTests: InteropTestCase {

    /// What the application side saw, beyond `TLSConnectionLog`: end-of-input events.
    final class HalfCloseLog: @unchecked Sendable {
        // @unchecked: guarded by `lock`.
        private let lock = NSLock()
        private var _inputClosed = 0
        var inputClosed: Int { lock.withLock { _inputClosed } }
        func sawInputClosed() { lock.withLock { _inputClosed += 1 } }
    }

    /// Logs like `TLSLoggingHandler`; on "bye\n" answers "see you\n" and closes its output only.
    final class HalfCloseHandler: ChannelInboundHandler {
        typealias InboundIn = ByteBuffer
        typealias OutboundOut = ByteBuffer
        let log: TLSConnectionLog
        let halfCloses: HalfCloseLog

        init(log: TLSConnectionLog, halfCloses: HalfCloseLog) {
            self.log = log
            self.halfCloses = halfCloses
        }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            let bytes = unwrapInboundIn(data)
            log.append(bytes)
            if log.received.hasSuffix("bye\n") {
                context.writeAndFlush(wrapOutboundOut(ByteBuffer(string: "see you\n")), promise: nil)
                context.close(mode: .output, promise: nil)
            }
        }

        func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
            if case .some(.inputClosed) = event as? ChannelEvent {
                halfCloses.sawInputClosed()
                // The peer is done sending; we may still answer before closing.
                context.writeAndFlush(wrapOutboundOut(ByteBuffer(string: "after your close\n")), promise: nil)
                context.close(promise: nil)
            }
        }

        func errorCaught(context: ChannelHandlerContext, error: any Error) {
            log.failed(error)
        }

        func channelInactive(context: ChannelHandlerContext) {
            log.closed()
        }
    }

    private func context() throws -> TLSContext {
        try TLSContext(
            anyClientCertificate: pki.path("db1.pem"),
            key: pki.path("db1.key"),
            alpn: "postgresql",
            setting: "balancers.pg.tls"
        )
    }

    private func startServer(requireALPN: Bool = false) throws -> (port: Int, log: TLSConnectionLog, halfCloses: HalfCloseLog) {
        let context = try self.context()
        let log = TLSConnectionLog()
        let halfCloses = HalfCloseLog()
        let channel = try ServerBootstrap(group: group)
            .serverChannelOption(ChannelOptions.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(.allowRemoteHalfClosure, value: true)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(
                        OpenSSLHandler(anyClientContext: context, requireALPN: requireALPN)
                    )
                    try channel.pipeline.syncOperations.addHandler(HalfCloseHandler(log: log, halfCloses: halfCloses))
                }
            }
            .bind(host: "127.0.0.1", port: 0).wait()
        self.addCleanup { try? channel.close().wait() }
        return (channel.localAddress!.port!, log, halfCloses)
    }

    private func sClient(port: Int, _ options: [String]) throws -> SpawnedProcess {
        try self.openssl(
            ["s_client", "-connect", "127.0.0.1:\(port)", "-CAfile", pki.path("ca.pem"), "-verify_return_error", "-no_ign_eof"]
                + options
        )
    }

    // MARK: The context

    func testContextNeedsNoCAAndNamesTheSettingInErrors() throws {
        let context = try self.context()
        XCTAssertEqual(context.audience, .anyClient(alpn: "postgresql"))
        XCTAssertEqual(context.role, .server)
        XCTAssertNil(context.files)
        XCTAssertGreaterThan(context.certificateNotAfter, Date())

        let missing = pki.path("nothing.pem")
        XCTAssertThrowsError(
            try TLSContext(anyClientCertificate: missing, key: pki.path("db1.key"), alpn: "postgresql", setting: "balancers.pg.tls")
        ) { error in
            XCTAssertEqual(
                "\(error)",
                "\(missing): certificate (balancers.pg.tls.cert) file does not exist; create it or fix the path in mesh.json"
            )
        }
        XCTAssertThrowsError(
            try TLSContext(
                anyClientCertificate: pki.path("db1.pem"),
                key: pki.path("db2.key"),
                alpn: "postgresql",
                setting: "balancers.pg.tls"
            )
        ) { error in
            let error = error as! TLSSetupError
            XCTAssertEqual(error.file, "\(pki.path("db2.key")) and \(pki.path("db1.pem"))")
            XCTAssert(error.message.hasPrefix("the private key does not match the certificate"), error.message)
        }
        let notPEM = pki.path("not-a-certificate.cnf")
        try "[ ca ]\ndefault_ca = mesh\n".write(toFile: notPEM, atomically: true, encoding: .utf8)
        XCTAssertThrowsError(
            try TLSContext(anyClientCertificate: notPEM, key: pki.path("db1.key"), alpn: "postgresql", setting: "balancers.pg.tls")
        ) { error in
            let message = (error as! TLSSetupError).message
            XCTAssert(message.hasPrefix("not a PEM certificate"), message)
            XCTAssert(message.contains("balancers.pg.tls.cert must hold the server's certificate"), message)
        }
    }

    // MARK: Handshakes

    func testClientWithoutCertificateExchangesDataAndHalfCloses() throws {
        let server = try startServer()
        let client = try sClient(port: server.port, ["-tls1_3", "-alpn", "postgresql"])
        XCTAssert(client.waitForOutput("Verify return code: 0 (ok)"), client.log())
        XCTAssert(client.log().contains("ALPN protocol: postgresql"), client.log())
        XCTAssert(client.log().contains("TLSv1.3"), client.log())

        client.send("select 1\n")
        XCTAssert(server.log.waitUntil { $0.received == "select 1\n" }, "server: \(server.log.errors); s_client: \(client.log())")
        XCTAssertEqual(server.log.handshakes.count, 0, "no peer identity is claimed for a client outside the mesh")

        // stdin EOF: s_client sends close_notify. We hear it as the end of input, not as a close.
        client.closeInput()
        XCTAssert(server.log.waitUntil { _ in server.halfCloses.inputClosed == 1 }, client.log())
        XCTAssertEqual(client.waitForExit(), 0, client.log())
        XCTAssert(server.log.waitUntil { $0.inactiveCount == 1 })
        XCTAssertEqual(server.log.errors, [])
    }

    func testClosingOurOutputSendsCloseNotify() throws {
        let server = try startServer()
        let client = try sClient(port: server.port, ["-alpn", "postgresql"])
        XCTAssert(client.waitForOutput("Verify return code: 0 (ok)"), client.log())
        client.send("bye\n")
        XCTAssert(client.waitForOutput("see you\n"), client.log())
        XCTAssertEqual(client.waitForExit(), 0, "s_client leaves at our close_notify: \(client.log())")
        XCTAssert(server.log.waitUntil { $0.inactiveCount == 1 })
        XCTAssertEqual(server.halfCloses.inputClosed, 0)
    }

    func testTLS12IsAcceptedWithForwardSecrecy() throws {
        let server = try startServer()
        let client = try sClient(port: server.port, ["-tls1_2"])
        XCTAssert(client.waitForOutput("Verify return code: 0 (ok)"), client.log())
        XCTAssert(client.log().contains("TLSv1.2"), client.log())
        XCTAssert(client.log().contains("ECDHE"), client.log())
        client.send("over 1.2\n")
        XCTAssert(server.log.waitUntil { $0.received == "over 1.2\n" }, client.log())
    }

    func testTLS12WithoutForwardSecrecyIsRefused() throws {
        let server = try startServer()
        let client = try sClient(port: server.port, ["-tls1_2", "-cipher", "AES128-GCM-SHA256"])
        XCTAssertNotEqual(client.waitForExit(), 0, client.log())
        XCTAssert(server.log.waitUntil { !$0.handshakeErrors.isEmpty }, client.log())
    }

    func testClientWithoutALPNIsServedUnlessALPNIsRequired() throws {
        let relaxed = try startServer()
        let plain = try sClient(port: relaxed.port, [])
        XCTAssert(plain.waitForOutput("Verify return code: 0 (ok)"), plain.log())
        XCTAssert(plain.log().contains("No ALPN negotiated"), plain.log())

        let strict = try startServer(requireALPN: true)
        let refused = try sClient(port: strict.port, [])
        XCTAssertNotEqual(refused.waitForExit(), 0, refused.log())
        XCTAssert(refused.log().contains("no application protocol"), refused.log())
        XCTAssert(strict.log.waitUntil { !$0.handshakeErrors.isEmpty })
        XCTAssertEqual(strict.log.handshakeErrors.first?.detail, #"client offered no ALPN protocol; this connection requires "postgresql""#)
    }

    func testClientOfferingOnlyOtherProtocolsIsRefused() throws {
        let server = try startServer()
        let client = try sClient(port: server.port, ["-alpn", "h2,http/1.1"])
        XCTAssertNotEqual(client.waitForExit(), 0, client.log())
        XCTAssert(client.log().contains("no application protocol"), client.log())
        XCTAssert(server.log.waitUntil { !$0.handshakeErrors.isEmpty })
        XCTAssertEqual(
            server.log.handshakeErrors.first?.detail,
            #"client offered ALPN ["h2", "http/1.1"] but this server speaks only "postgresql""#
        )
    }
}
