import Foundation
import XCTest

@testable import MeshConfig

/// The founding example (`ConfigFixtures.designExample`) loads, and every field comes out as written
/// (or as its default in README.md, "mesh.json").
final class DesignExampleTests: XCTestCase {
    func testDesignExampleLoadsEveryField() throws {
        let config = try ConfigFixtures.parse(Data(ConfigFixtures.designExample.utf8))
        let dir = ConfigFixtures.directory

        XCTAssertEqual(config.file, "mesh.json")
        XCTAssertEqual(config.directory, dir)
        XCTAssertEqual(config.mesh, "demo")
        XCTAssertEqual(config.tls, TLSSettings(ca: "pki/ca.pem", cert: "pki/{node}.pem", key: "pki/{node}.key", crl: "pki/crl.pem"))

        XCTAssertEqual(config.tunnel.pingInterval, .seconds(1))
        XCTAssertEqual(config.tunnel.deadAfter, 3)
        XCTAssertEqual(config.tunnel.backoffMax, .seconds(2))
        XCTAssertEqual(config.tunnel.backoffMin, .milliseconds(100))
        XCTAssertEqual(config.tunnel.handshakeTimeout, .seconds(5))
        XCTAssertEqual(config.tunnel.shutdownGrace, .seconds(10))
        XCTAssertEqual(config.tunnel.maxStreamsPerPeer, 16384)
        XCTAssertEqual(config.tunnel.maxPendingHandshakes, 256)
        XCTAssertEqual(config.tunnel, .defaults)

        XCTAssertEqual(config.sortedNodeNames, ["app1", "db1", "db2"])
        XCTAssertEqual(
            config.nodes["db1"],
            NodeSettings(name: "db1", address: .tcp(host: "127.0.1.1", port: 7443), control: "\(dir)/run/db1.sock")
        )
        XCTAssertEqual(
            config.nodes["db2"],
            NodeSettings(name: "db2", address: .tcp(host: "127.0.1.2", port: 7443), control: "\(dir)/run/db2.sock")
        )
        XCTAssertEqual(
            config.nodes["app1"],
            NodeSettings(name: "app1", address: .tcp(host: "127.0.1.3", port: 7443), control: "\(dir)/run/app1.sock")
        )

        let postgres = try XCTUnwrap(config.services["postgres"])
        XCTAssertEqual(config.services.count, 1)
        XCTAssertEqual(postgres.name, "postgres")
        XCTAssertEqual(postgres.on, ["db1": .tcp(host: "127.0.0.1", port: 55432), "db2": .tcp(host: "127.0.0.1", port: 55433)])
        XCTAssertEqual(postgres.allow, .nodes(["app1"]))
        XCTAssertTrue(postgres.allow.permits("app1"))
        XCTAssertFalse(postgres.allow.permits("db2"))
        XCTAssertEqual(
            postgres.postgres,
            PostgresSettings(monitorUser: "meshmon", database: "postgres", passwordFile: nil, probeInterval: .seconds(1))
        )

        XCTAssertEqual(
            config.forwards,
            [ForwardSettings(on: "app1", listen: .tcp(host: "127.0.0.1", port: 15432), service: "postgres", node: "db1")]
        )
        XCTAssertEqual(config.forwards.first?.listenerName, "forward-15432")

        let pg = try XCTUnwrap(config.balancers["pg"])
        XCTAssertEqual(config.balancers.count, 1)
        XCTAssertEqual(pg.name, "pg")
        XCTAssertEqual(pg.service, "postgres")
        XCTAssertEqual(pg.on, ["app1": BalancerListeners(rw: .tcp(host: "127.0.0.1", port: 6432), ro: .tcp(host: "127.0.0.1", port: 6433))])
        XCTAssertEqual(pg.maxLag, .seconds(10))
        XCTAssertEqual(pg.roFallback, .primary)
        XCTAssertEqual(pg.rwListenerName, "pg-rw")
        XCTAssertEqual(pg.roListenerName, "pg-ro")

        XCTAssertNil(config.metrics)
    }

    func testPerNodeQueries() throws {
        let config = try ConfigFixtures.parse(Data(ConfigFixtures.designExample.utf8))
        let dir = ConfigFixtures.directory
        XCTAssertEqual(
            config.tlsFiles(for: "db1"),
            TLSFiles(ca: "\(dir)/pki/ca.pem", cert: "\(dir)/pki/db1.pem", key: "\(dir)/pki/db1.key", crl: "\(dir)/pki/crl.pem")
        )
        XCTAssertEqual(config.tlsFiles(for: "app1").cert, "\(dir)/pki/app1.pem")
        XCTAssertEqual(config.services(on: "db1").map(\.name), ["postgres"])
        XCTAssertEqual(config.services(on: "app1").map(\.name), [])
        XCTAssertEqual(config.forwards(on: "app1").map(\.node), ["db1"])
        XCTAssertEqual(config.forwards(on: "db1"), [])
        XCTAssertEqual(config.balancers(on: "app1").map(\.name), ["pg"])
        XCTAssertEqual(config.identity(of: "db2").uri, "spiffe://demo/node/db2")
    }

    func testOptionalSectionsTakeTheirDefaults() throws {
        let config = try ConfigFixtures.parse(
            Data(
                #"{"mesh": "demo", "tls": {"ca": "/pki/ca.pem", "cert": "/pki/{node}.pem", "key": "/pki/{node}.key"}, "nodes": {"a": {"address": "127.0.0.1:7443"}}}"#
                    .utf8
            )
        )
        XCTAssertEqual(config.tunnel, .defaults)
        XCTAssertNil(config.tls.crl)
        XCTAssertNil(config.tlsFiles(for: "a").crl)
        XCTAssertEqual(config.tlsFiles(for: "a").key, "/pki/a.key")
        XCTAssertEqual(config.nodes["a"]?.control, "/run/meshd/control.sock")
        XCTAssertEqual(config.services, [:])
        XCTAssertEqual(config.forwards, [])
        XCTAssertEqual(config.balancers, [:])
    }

    func testEveryNewKeyIsRead() throws {
        let config = try XCTUnwrap(
            accepted([
                ("tunnel.backoff_min", "250ms"), ("tunnel.handshake_timeout", "3s"), ("tunnel.shutdown_grace", "0s"),
                ("tunnel.max_streams_per_peer", 100), ("tunnel.max_pending_handshakes", 8), ("tunnel.ping_interval", "1.5s"),
                ("tunnel.reauthenticate_before", "1h"),
                ("services.postgres.postgres.password_file", "secrets/pg.pass"),
                ("services.postgres.postgres.probe_interval", "500ms"),
                ("services.postgres.postgres.monitor_user", "watcher"), ("services.postgres.postgres.database", "app"),
                ("services.postgres.allow", ["*"]),
                ("services.web.on.app1", "unix:run/web.sock"),
                ("forwards.1", ["on": "db2", "listen": "unix:/tmp/web-fwd.sock", "to": "web@app1"]),
                ("balancers.pg.max_lag", "0s"), ("balancers.pg.ro_fallback", "none"),
                ("balancers.pg.on.db1", ["ro": "[::1]:6433"]),
                ("metrics", "127.0.0.1:9810"),
            ])
        )
        XCTAssertEqual(
            config.tunnel,
            TunnelSettings(
                pingInterval: .milliseconds(1500),
                deadAfter: 3,
                backoffMin: .milliseconds(250),
                backoffMax: .seconds(2),
                handshakeTimeout: .seconds(3),
                shutdownGrace: .zero,
                maxStreamsPerPeer: 100,
                maxPendingHandshakes: 8,
                reauthenticateBefore: .seconds(3600)
            )
        )
        XCTAssertEqual(
            config.services["postgres"]?.postgres,
            PostgresSettings(
                monitorUser: "watcher",
                database: "app",
                passwordFile: "/etc/tunnelmesh/secrets/pg.pass",
                probeInterval: .milliseconds(500)
            )
        )
        XCTAssertEqual(config.services["postgres"]?.allow, .anyNode)
        XCTAssertTrue(config.services["postgres"]?.allow.permits("db2") ?? false)
        XCTAssertEqual(
            config.services["web"],
            ServiceSettings(name: "web", on: ["app1": .unix(path: "/etc/tunnelmesh/run/web.sock")], allow: .nodes([]), postgres: nil)
        )
        XCTAssertEqual(config.services["web"]?.allow.permits("app1"), false, "no allow list means nobody")
        XCTAssertEqual(config.forwards.last?.listenerName, "forward-web-fwd.sock")
        XCTAssertEqual(config.forwards(on: "db2").map(\.service), ["web"])
        XCTAssertEqual(config.balancers["pg"]?.maxLag, .zero)
        XCTAssertEqual(config.balancers["pg"]?.roFallback, ReadFallback.none)
        XCTAssertEqual(config.balancers["pg"]?.on["db1"], BalancerListeners(rw: nil, ro: .tcp(host: "::1", port: 6433)))
        XCTAssertEqual(config.metrics, .tcp(host: "127.0.0.1", port: 9810))
    }

    func testLoadFromDiskResolvesAgainstTheFilesDirectory() throws {
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("meshconfig-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: root + "/conf", withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: root) }
        try Data(ConfigFixtures.designExample.utf8).write(to: URL(fileURLWithPath: root + "/conf/mesh.json"))

        let path = root + "/conf/../conf/./mesh.json"
        let config = try MeshConfiguration.load(path: path)
        XCTAssertEqual(config.file, path)
        XCTAssertEqual(config.directory, root + "/conf")
        XCTAssertEqual(config.tlsFiles(for: "db2").key, root + "/conf/pki/db2.key")
        XCTAssertEqual(config.nodes["db2"]?.control, root + "/conf/run/db2.sock")

        let parsed = try MeshConfiguration.parse(Data(ConfigFixtures.designExample.utf8), file: path, directory: root + "/conf")
        XCTAssertEqual(config, parsed)
    }
}
