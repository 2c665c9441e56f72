import Foundation
import MeshTestSupport
import NIOCore
import XCTest

/// Real `openssl` processes and raw sockets against a running meshd's mesh port: every bad client is
/// refused with its reason in the log while a legitimate tunnel keeps carrying traffic; and the TLS
/// interop both ways with a stock OpenSSL peer.
final class SecurityMatrixTests: MeshTestCase {
    private struct Probe {
        var name: String
        /// The reason label meshd must log (TLSHandshakeError's raw values).
        var reason: String
        var run: () throws -> String
    }

    /// s_client against host:port with optional certificate; output (stdout+stderr) returned.
    private func sClient(_ host: String, _ port: Int, cert: URL?, key: URL?, ca: URL, version: String = "-tls1_3") throws -> String {
        var args = ["10", "openssl", "s_client", version, "-alpn", "h2", "-connect", "\(host):\(port)", "-CAfile", ca.path]
        if let cert, let key { args += ["-cert", cert.path, "-key", key.path] }
        let result = try Command.run("timeout", args, timeout: .seconds(15))
        return "exit \(result.status)\n" + result.output
    }

    /// Sends raw bytes over a plain TCP socket and reads whatever comes back until close.
    private func raw(_ host: String, _ port: Int, _ bytes: [UInt8]) throws -> String {
        let socket = try TCPSocket.connect(host: host, port: port)
        defer { socket.close() }
        try? socket.send(bytes)
        let (answer, end) = socket.readAll(timeout: .seconds(10))
        return "answer \(answer.count) bytes, then \(end)"
    }

    func testMeshPortRejectsEveryBadClientAndKeepsServingPeers() throws {
        let bad = ["c-expired", "c-future", "c-revoked"]
        let mesh = try self.makeMesh(range: 6, nodes: ["app1", "db1"] + bad, withoutCertificates: Set(bad))
        let pki = mesh.pki
        let day: TimeInterval = 86_400
        try pki.issue("c-expired", days: 30, notBefore: Date().addingTimeInterval(-400 * day))
        try pki.issue("c-future", days: 30, notBefore: Date().addingTimeInterval(366 * day))
        try pki.issue("c-revoked")
        try pki.revoke("c-revoked")
        try pki.issue("ghost")  // a good certificate from the mesh CA for a node mesh.json does not declare
        let selfSigned = try pki.selfSigned("app1", name: "selfsigned")
        let otherMesh = try pki.signed(name: "othermesh", commonName: "app1", uri: "spiffe://othermesh/node/app1")
        let otherCA = try TestPKI(mesh: "itest", dir: mesh.root.appendingPathComponent("other-ca"))
        try otherCA.issue("app1")

        let forward = try self.addEchoForward(mesh)
        guard case let (app1, db1)? = try self.startPair(mesh) else { return }
        XCTAssertTrue(self.echoWorks(host: forward.host, port: forward.port), "forward works before the matrix")
        let app1Mark = app1.logMark()

        let (host, port) = mesh.meshAddress("db1")
        let ca = pki.caPEM
        var garbage = [UInt8](repeating: 0, count: 4096)
        for index in garbage.indices { garbage[index] = UInt8.random(in: 0...255) }
        // A first byte of 20-24 (or >= 0x80, SSLv2-style) could make the bytes parse as a TLS record
        // header for a moment; pin it to a byte no TLS record starts with so the expected reason is fixed.
        garbage[0] = 0x42
        let probes: [Probe] = [
            Probe(name: "no client certificate", reason: "no_certificate") {
                try self.sClient(host, port, cert: nil, key: nil, ca: ca)
            },
            Probe(name: "self-signed certificate", reason: "untrusted") {
                try self.sClient(host, port, cert: selfSigned.cert, key: selfSigned.key, ca: ca)
            },
            Probe(name: "certificate from another CA", reason: "untrusted") {
                try self.sClient(host, port, cert: otherCA.cert("app1"), key: otherCA.key("app1"), ca: ca)
            },
            Probe(name: "expired certificate", reason: "expired") {
                try self.sClient(host, port, cert: pki.cert("c-expired"), key: pki.key("c-expired"), ca: ca)
            },
            Probe(name: "not yet valid certificate", reason: "not_yet_valid") {
                try self.sClient(host, port, cert: pki.cert("c-future"), key: pki.key("c-future"), ca: ca)
            },
            Probe(name: "revoked certificate", reason: "revoked") {
                try self.sClient(host, port, cert: pki.cert("c-revoked"), key: pki.key("c-revoked"), ca: ca)
            },
            Probe(name: "SAN for another mesh", reason: "wrong_mesh") {
                try self.sClient(host, port, cert: otherMesh.cert, key: otherMesh.key, ca: ca)
            },
            Probe(name: "valid certificate for an undeclared node", reason: "undeclared_node") {
                try self.sClient(host, port, cert: pki.cert("ghost"), key: pki.key("ghost"), ca: ca)
            },
            Probe(name: "TLS 1.2-only client", reason: "protocol_version") {
                try self.sClient(host, port, cert: pki.cert("app1"), key: pki.key("app1"), ca: ca, version: "-tls1_2")
            },
            Probe(name: "plaintext HTTP request", reason: "not_tls") {
                try self.raw(host, port, Array("GET / HTTP/1.1\r\nHost: \(host)\r\n\r\n".utf8))
            },
            Probe(name: "4 KiB of random garbage", reason: "not_tls") {
                try self.raw(host, port, garbage)
            },
        ]

        var summary: [String] = []
        for probe in probes {
            let mark = db1.logMark()
            let clientSaw = try probe.run()
            let line = db1.waitForLog(containing: "rejected connection", after: mark, timeout: .seconds(10))
            guard let line else {
                XCTFail("\(probe.name): db1 logged no 'rejected connection'\nclient saw: \(clientSaw)\n\(db1.logTail(20))")
                summary.append("\(probe.name): NOT REJECTED")
                continue
            }
            XCTAssertTrue(line.contains("(\(probe.reason))"), "\(probe.name): expected reason \(probe.reason), db1 logged: \(line)")
            let later = db1.log(after: mark)
            for name in bad + ["app1"] {
                XCTAssertFalse(later.contains("peer \(name) up"), "\(probe.name): db1 let peer \(name) up:\n\(later)")
            }
            summary.append(
                "\(probe.name): \(line.contains("(\(probe.reason))") ? "ok" : "WRONG") — \(line.components(separatedBy: "rejected connection: ").last ?? line)"
            )
        }
        print("security matrix against db1 \(host):\(port):\n  " + summary.joined(separator: "\n  "))

        XCTAssertTrue(db1.isRunning, "db1 must survive the matrix\n\(db1.logTail())")
        XCTAssertTrue(self.echoWorks(host: forward.host, port: forward.port), "the legitimate forward still works after the matrix")
        XCTAssertNil(
            app1.waitForLog(containing: "peer db1 down", after: app1Mark, timeout: .zero),
            "the legitimate tunnel went down during the matrix\n\(app1.logTail())"
        )
    }

    /// Stock `openssl s_client` with a valid node certificate completes a TLS 1.3 handshake with
    /// meshd's listener and negotiates ALPN h2.
    func testOpenSSLClientCompletesHandshakeWithMeshd() throws {
        let mesh = try self.makeMesh(range: 7, nodes: ["app1", "db1"])
        let db1 = try mesh.start("db1")
        let (host, port) = mesh.meshAddress("db1")
        XCTAssertNotNil(db1.waitForLog(containing: "listening", timeout: .seconds(15)), "db1 never listened\n\(db1.logTail())")
        let output = try self.sClient(host, port, cert: mesh.pki.cert("app1"), key: mesh.pki.key("app1"), ca: mesh.pki.caPEM)
        XCTAssertTrue(output.contains("ALPN protocol: h2"), "s_client did not negotiate h2:\n\(output)")
        XCTAssertTrue(output.contains("TLSv1.3"), "s_client did not use TLS 1.3:\n\(output)")
        XCTAssertTrue(output.contains("Verify return code: 0 (ok)"), "s_client did not verify meshd's certificate:\n\(output)")
        XCTAssertTrue(db1.isRunning)
    }

    /// meshd dials a stock `openssl s_server` (standing in for peer db1 at db1's address) that requires
    /// a client certificate: the handshake completes, s_server sees app1's certificate and the HTTP/2
    /// connection preface arrives over the TLS session.
    func testMeshdDialsOpenSSLServerWithClientCertificate() throws {
        let mesh = try self.makeMesh(range: 8, nodes: ["app1", "db1"])
        let (host, port) = mesh.meshAddress("db1")
        // stdin a pipe held open, so s_server never sees EOF and quits.
        let server = try mesh.spawn(
            label: "s_server",
            executable: "openssl",
            arguments: [
                "s_server", "-tls1_3", "-alpn", "h2", "-Verify", "1", "-accept", "\(host):\(port)",
                "-cert", mesh.pki.cert("db1").path, "-key", mesh.pki.key("db1").path, "-CAfile", mesh.pki.caPEM.path,
            ],
            interactive: true
        )
        XCTAssertTrue(server.waitForOutput("ACCEPT", timeout: .seconds(10)), "s_server did not start:\n\(server.log())")
        let app1 = try mesh.start("app1")
        let preface = server.waitForOutput("PRI * HTTP/2.0", timeout: .seconds(15))
        let text = server.log()
        XCTAssertTrue(preface, "s_server never received the HTTP/2 preface from meshd:\n\(text)\n\(app1.logTail())")
        XCTAssertTrue(text.contains("CN = app1") || text.contains("CN=app1"), "s_server did not see app1's certificate:\n\(text)")
        XCTAssertFalse(text.contains("verify error"), "s_server could not verify app1's certificate:\n\(text)")
        print(
            "s_server saw:\n"
                + text.split(separator: "\n").filter {
                    $0.contains("subject") || $0.contains("PRI") || $0.contains("ALPN") || $0.contains("Protocol")
                }.joined(separator: "\n")
        )
    }
}
