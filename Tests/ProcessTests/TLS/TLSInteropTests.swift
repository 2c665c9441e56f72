import Foundation
import MeshConfig
import MeshTestSupport
import NIOCore
import NIOPosix
import XCTest

@testable import MeshTLS

/// Our handler on real sockets against real `openssl s_client` and `openssl s_server` processes.
final class TLSInteropTests: InteropTestCase {
    private func startServer(greeting: String? = nil, handshakeTimeout: TimeAmount = .seconds(5)) throws -> TLSTestServer {
        let server = try TLSTestServer(
            group: group,
            context: try pki.context(.server, "db1", crl: true),
            policy: .declaredNode(mesh: "demo", nodes: ["db1", "db2", "app1"]),
            greeting: greeting,
            handshakeTimeout: handshakeTimeout
        )
        self.addCleanup { server.stop() }
        return server
    }

    private func sClient(port: Int, _ options: [String]) throws -> SpawnedProcess {
        try openssl(
            ["s_client", "-connect", "127.0.0.1:\(port)", "-CAfile", pki.path("ca.pem"), "-verify_return_error", "-no_ign_eof"]
                + options
        )
    }

    // MARK: Our server, openssl s_client

    func testOpenSSLClientWithCertificateExchangesData() throws {
        let server = try startServer(greeting: "hello from meshd\n")
        let client = try sClient(
            port: server.port,
            ["-tls1_3", "-alpn", "h2", "-cert", pki.path("app1.pem"), "-key", pki.path("app1.key")]
        )
        XCTAssert(server.log.waitUntil { !$0.handshakes.isEmpty }, "server errors: \(server.log.errors); s_client: \(client.log())")
        XCTAssertEqual(server.log.handshakes.first?.peer, MeshIdentity(mesh: "demo", node: "app1"))
        XCTAssert(client.waitForOutput("hello from meshd"), client.log())
        XCTAssert(client.log().contains("ALPN protocol: h2"), client.log())
        XCTAssert(client.log().contains("Verify return code: 0 (ok)"), client.log())

        client.send("ping from s_client\n")
        XCTAssert(server.log.waitUntil { $0.received == "ping from s_client\n" }, server.log.received)

        // stdin EOF: s_client sends close_notify and leaves; a clean close on our side.
        client.closeInput()
        XCTAssertEqual(client.waitForExit(), 0, client.log())
        XCTAssert(server.log.waitUntil { $0.inactiveCount == 1 })
        XCTAssertEqual(server.log.errors, [])
    }

    func testSessionsAreNeverResumed() throws {
        // Every connection must re-check chain, dates and CRL: a ticket from an earlier connection
        // must not let a client skip that.
        let server = try startServer(greeting: "hello\n")
        let session = pki.path("session-\(UUID().uuidString.prefix(6)).pem")
        let options = ["-tls1_3", "-alpn", "h2", "-cert", pki.path("app1.pem"), "-key", pki.path("app1.key")]
        let first = try sClient(port: server.port, options + ["-sess_out", session])
        XCTAssert(first.waitForOutput("hello"), first.log())
        first.closeInput()
        XCTAssertEqual(first.waitForExit(), 0, first.log())
        XCTAssert(FileManager.default.fileExists(atPath: session), "s_client saved the session: \(first.log())")

        let second = try sClient(port: server.port, options + ["-sess_in", session])
        XCTAssert(second.waitForOutput("hello"), second.log())
        second.closeInput()
        XCTAssertEqual(second.waitForExit(), 0, second.log())
        XCTAssert(second.log().contains("New, TLSv1.3"), second.log())
        XCTAssertFalse(second.log().contains("Reused"), second.log())
        XCTAssertEqual(server.log.handshakes.count, 2)
    }

    func testTLS12ClientIsRejectedWithProtocolVersion() throws {
        let server = try startServer()
        let client = try sClient(
            port: server.port,
            ["-tls1_2", "-alpn", "h2", "-cert", pki.path("app1.pem"), "-key", pki.path("app1.key")]
        )
        XCTAssert(server.log.waitUntil { !$0.handshakeErrors.isEmpty }, client.log())
        XCTAssertEqual(server.log.handshakeErrors.first?.reason, .protocolVersion, "\(server.log.errors)")
        XCTAssertNotEqual(client.waitForExit(), 0)
        XCTAssert(client.log().contains("alert protocol version"), client.log())
        XCTAssert(server.log.handshakes.isEmpty)
    }

    func testClientWithoutCertificateIsRejectedWithNoCertificate() throws {
        let server = try startServer(greeting: "must never be seen\n")
        let client = try sClient(port: server.port, ["-tls1_3", "-alpn", "h2"])
        XCTAssert(server.log.waitUntil { !$0.handshakeErrors.isEmpty }, client.log())
        XCTAssertEqual(server.log.handshakeErrors.first?.reason, .noCertificate, "\(server.log.errors)")
        XCTAssertNotEqual(client.waitForExit(), 0)
        XCTAssert(client.log().contains("certificate required"), client.log())
        XCTAssertFalse(client.log().contains("must never be seen"))
    }

    func testClientWithoutALPNIsRejected() throws {
        let server = try startServer()
        let client = try sClient(port: server.port, ["-tls1_3", "-cert", pki.path("app1.pem"), "-key", pki.path("app1.key")])
        XCTAssert(server.log.waitUntil { !$0.handshakeErrors.isEmpty }, client.log())
        let error = try XCTUnwrap(server.log.handshakeErrors.first)
        XCTAssertEqual(error.reason, .other)
        XCTAssertEqual(error.detail, "client offered no ALPN protocol; mesh peers must offer \"h2\"")
        XCTAssertNotEqual(client.waitForExit(), 0)
        XCTAssert(client.log().contains("no application protocol"), client.log())
    }

    func testClientOfferingOnlyOtherProtocolsIsRejected() throws {
        let server = try startServer()
        let client = try sClient(
            port: server.port,
            ["-tls1_3", "-alpn", "http/1.1", "-cert", pki.path("app1.pem"), "-key", pki.path("app1.key")]
        )
        XCTAssert(server.log.waitUntil { !$0.handshakeErrors.isEmpty }, client.log())
        XCTAssertEqual(server.log.handshakeErrors.first?.detail, "client offered ALPN [\"http/1.1\"] but mesh peers speak only \"h2\"")
        XCTAssertNotEqual(client.waitForExit(), 0)
    }

    func testPlaintextOnTheTLSPortIsNotTLS() throws {
        let server = try startServer()
        // s_client's -starttls is not it; a raw TCP client says HTTP instead.
        let raw = try ClientBootstrap(group: group).connect(host: "127.0.0.1", port: server.port).wait()
        try raw.writeAndFlush(ByteBuffer(string: "GET / HTTP/1.1\r\n\r\n")).wait()
        XCTAssert(server.log.waitUntil { !$0.handshakeErrors.isEmpty })
        XCTAssertEqual(server.log.handshakeErrors.first?.reason, .notTLS)
        XCTAssert(try raw.closeFuture.waitBounded(timeout: .seconds(5)), "the server closes the connection")
    }

    func testClientThatHangsUpMidHandshakeIsEOF() throws {
        let server = try startServer()
        let raw = try ClientBootstrap(group: group).connect(host: "127.0.0.1", port: server.port).wait()
        try raw.close().wait()
        XCTAssert(server.log.waitUntil { !$0.handshakeErrors.isEmpty })
        XCTAssertEqual(server.log.handshakeErrors.first?.reason, .eof)
    }

    func testSilentClientTimesOutAndIsDisconnected() throws {
        let server = try startServer(handshakeTimeout: .milliseconds(300))
        let raw = try ClientBootstrap(group: group).connect(host: "127.0.0.1", port: server.port).wait()
        let started = Date()
        XCTAssert(try raw.closeFuture.waitBounded(timeout: .seconds(5)), "the server hangs up on a silent client")
        XCTAssertGreaterThanOrEqual(Date().timeIntervalSince(started), 0.25)
        XCTAssert(server.log.waitUntil { !$0.handshakeErrors.isEmpty })
        XCTAssertEqual(server.log.handshakeErrors.first?.reason, .timeout)
    }

    // MARK: Our client, openssl s_server

    private func sServer(ca: String = "ca.pem", extra: [String] = ["-alpn", "h2"]) throws -> (SpawnedProcess, Int) {
        let server = try openssl(
            [
                "s_server", "-accept", "127.0.0.1:0", "-tls1_3", "-Verify", "1", "-verify_return_error",
                "-cert", pki.path("db1.pem"), "-key", pki.path("db1.key"), "-CAfile", pki.path(ca), "-naccept", "1",
            ] + extra
        )
        guard server.waitForOutput("ACCEPT"),
            let line = server.log().split(separator: "\n").first(where: { $0.hasPrefix("ACCEPT") }),
            let port = line.split(separator: ":").last.flatMap({ Int($0.trimmingCharacters(in: .whitespaces)) })
        else {
            throw SpawnedProcess.Failure(description: "s_server did not start: \(server.log())")
        }
        return (server, port)
    }

    func testOurClientWithOpenSSLServerExchangesData() throws {
        let (server, port) = try sServer()
        let log = TLSConnectionLog()
        let channel = try tlsTestConnect(
            group: group,
            port: port,
            context: try pki.context(.client, "app1", crl: true),
            policy: .exactly(MeshIdentity(mesh: "demo", node: "db1")),
            log: log
        )
        XCTAssert(log.waitUntil { !$0.handshakes.isEmpty }, "errors: \(log.errors); s_server: \(server.log())")
        XCTAssertEqual(log.handshakes.first?.peer, MeshIdentity(mesh: "demo", node: "db1"))
        XCTAssertEqual(log.handshakes.first?.alpn, "h2")

        try channel.writeAndFlush(ByteBuffer(string: "hello from the mesh client\n")).wait()
        XCTAssert(server.waitForOutput("hello from the mesh client"), server.log())
        server.send("hello from s_server\n")
        XCTAssert(log.waitUntil { $0.received == "hello from s_server\n" }, log.received)

        // close_notify both ways, within the bounded wait.
        XCTAssert(try channel.close().waitBounded(timeout: .seconds(5)))
        XCTAssertEqual(log.errors, [])
        XCTAssertNotNil(server.waitForExit(), "s_server -naccept 1 leaves after the connection: \(server.log())")
    }

    /// Dials `port` as app1 expecting db1, and waits for the handshake to fail.
    private func dialAsApp1(port: Int, server: SpawnedProcess) throws -> TLSConnectionLog {
        let log = TLSConnectionLog()
        _ = try tlsTestConnect(
            group: group,
            port: port,
            context: try pki.context(.client, "app1"),
            policy: .exactly(MeshIdentity(mesh: "demo", node: "db1")),
            log: log
        )
        XCTAssert(log.waitUntil { !$0.handshakeErrors.isEmpty }, "s_server: \(server.log())")
        return log
    }

    func testOpenSSLServerRefusingOurCertificateIsPeerRejected() throws {
        // s_server trusts another CA, so it refuses our (good) certificate after our Finished.
        let (server, port) = try sServer(ca: "other/ca.pem")
        let log = try self.dialAsApp1(port: port, server: server)
        let error = try XCTUnwrap(log.handshakeErrors.first)
        XCTAssertEqual(error.reason, .peerRejected)
        XCTAssertEqual(error.detail, "peer rejected our certificate: alert \"unknown CA\"")
        XCTAssert(log.handshakes.isEmpty, "the handshake never counted as complete")
    }

    func testOpenSSLServerWithoutALPNIsRefusedByOurClient() throws {
        let (server, port) = try sServer(extra: [])
        let log = try self.dialAsApp1(port: port, server: server)
        XCTAssertEqual(log.handshakeErrors.first?.detail, "server did not select ALPN \"h2\"; it is not a mesh node")
    }
}

extension EventLoopFuture where Value == Void {
    /// Waits at most `timeout`; true when the future completed (successfully or not) in time.
    func waitBounded(timeout: TimeAmount) throws -> Bool {
        let done = DispatchSemaphore(value: 0)
        whenComplete { _ in done.signal() }
        return done.wait(timeout: .now() + .nanoseconds(Int(timeout.nanoseconds))) == .success
    }
}
