import Foundation
import Logging
import MeshBalancer
import MeshConfig
import MeshTLS
import MeshTestSupport
import NIOCore
import NIOPosix

/// A balancer's own certificate for tests: self-signed for 127.0.0.1 and localhost with the real
/// `openssl` CLI in a temporary directory, and a mesh.json naming it in `balancers.pg.tls`, so the
/// context is made exactly as meshd makes it (`FrontDoorTLS.context`).
final class FrontDoorCertificate {
    let directory: String
    var cert: String { self.directory + "/pki/pg-app1.pem" }
    var key: String { self.directory + "/pki/pg-app1.key" }

    init() throws {
        self.directory = NSTemporaryDirectory() + "meshbalancer-tls-" + UUID().uuidString.prefix(8)
        try FileManager.default.createDirectory(atPath: self.directory + "/pki", withIntermediateDirectories: true)
        do {
            try Command.check(
                "/usr/bin/openssl",
                [
                    "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", self.key,
                    "-out", self.cert, "-days", "2", "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost",
                ]
            )
        } catch {
            self.remove()
            throw error
        }
    }

    func remove() {
        try? FileManager.default.removeItem(atPath: self.directory)
    }

    /// A mesh.json in `directory` whose balancer "pg" has `tls` (relative paths with `{node}`).
    func configuration(tls: [String: String]? = ["cert": "pki/pg-{node}.pem", "key": "pki/pg-{node}.key"]) throws -> MeshConfiguration {
        var balancer: [String: Any] = ["service": "postgres", "on": ["app1": ["rw": "127.0.0.1:6432"]]]
        if let tls { balancer["tls"] = tls }
        let tree: [String: Any] = [
            "mesh": "demo",
            "tls": ["ca": "pki/ca.pem", "cert": "pki/{node}.pem", "key": "pki/{node}.key"],
            "nodes": ["db1": ["address": "127.0.1.1:7443"], "app1": ["address": "127.0.1.3:7443"]],
            "services": ["postgres": ["on": ["db1": "127.0.0.1:55432"], "allow": ["app1"], "postgres": [String: Any]()]],
            "balancers": ["pg": balancer],
        ]
        let data = try JSONSerialization.data(withJSONObject: tree)
        return try MeshConfiguration.parse(data, file: self.directory + "/mesh.json", directory: self.directory)
    }

    /// The server context of balancer "pg" on app1, made from the configuration.
    func context() throws -> TLSContext {
        let config = try self.configuration()
        guard let context = try FrontDoorTLS.context(for: config.balancers["pg"]!, in: config, node: "app1") else {
            throw PostgresCluster.Problem("balancer pg has no tls block")
        }
        return context
    }
}

/// A front door on 127.0.0.1 at an ephemeral port, as meshd runs one for a balancer listener; what
/// `bridge` and `cancel` do is the test's (see `ScriptedSession`).
final class FrontDoorTestServer {
    let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
    private(set) var channel: (any Channel)!
    var port: Int { self.channel.localAddress!.port! }

    init(
        tls: TLSContext?,
        route: @escaping @Sendable (StartupMessage) -> Result<FrontDoorHandler.Route, ErrorResponse>,
        bridge: @escaping @Sendable (Channel, FrontDoorHandler.Route) throws -> Void = { _, _ in },
        cancel: @escaping @Sendable (BackendKeyData) -> Void = { _ in }
    ) throws {
        do {
            self.channel = try ServerBootstrap(group: self.group)
                .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
                .childChannelOption(.allowRemoteHalfClosure, value: true)
                .childChannelInitializer { channel in
                    channel.eventLoop.makeCompletedFuture {
                        let session = ScriptedSession(channel: channel, route: route, bridge: bridge, cancel: cancel)
                        try channel.pipeline.syncOperations.addHandler(
                            FrontDoorHandler(session: session, tls: tls, logger: Logger(label: "front-door-test"))
                        )
                    }
                }
                .bind(host: "127.0.0.1", port: 0).wait()
        } catch {
            try? self.group.syncShutdownGracefully()
            throw error
        }
    }

    func stop() {
        try? self.channel.close().wait()
        try? self.group.syncShutdownGracefully()
    }
}
