import Foundation
import XCTest

@testable import MeshConfig

/// `balancers.<name>.tls`: the balancer's own server certificate, read, resolved per node, and every
/// mistake in it named with its JSON path and what to write instead.
final class BalancerTLSTests: XCTestCase {
    static var block: [String: Any] { ["cert": "pki/pg-{node}.pem", "key": "/secure/pg-{node}.key"] }

    func testAbsentBlockMeansNoTLS() throws {
        let config = try XCTUnwrap(accepted([]))
        let pg = try XCTUnwrap(config.balancers["pg"])
        XCTAssertNil(pg.tls)
        XCTAssertNil(config.tlsFiles(of: pg, on: "app1"))
    }

    func testBlockIsReadAndResolvedPerNode() throws {
        let config = try XCTUnwrap(accepted([("balancers.pg.tls", Self.block)]))
        let pg = try XCTUnwrap(config.balancers["pg"])
        XCTAssertEqual(pg.tls, BalancerTLSSettings(cert: "pki/pg-{node}.pem", key: "/secure/pg-{node}.key"))
        XCTAssertEqual(
            config.tlsFiles(of: pg, on: "app1"),
            BalancerTLSFiles(cert: "/etc/tunnelmesh/pki/pg-app1.pem", key: "/secure/pg-app1.key")
        )
        XCTAssertEqual(config.tlsFiles(of: pg, on: "db2")?.cert, "/etc/tunnelmesh/pki/pg-db2.pem")
    }

    func testNullBlockMeansNoTLS() throws {
        let config = try XCTUnwrap(accepted([("balancers.pg.tls", NSNull())]))
        XCTAssertNil(config.balancers["pg"]?.tls)
    }

    func testPathsResolveAgainstTheFilesDirectory() throws {
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("meshconfig-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: root + "/conf", withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: root) }
        let tree = ConfigFixtures.designTree(with: [("balancers.pg.tls", ["cert": "../pki/pg.pem", "key": "pki/./pg.key"])])
        try ConfigFixtures.data(tree).write(to: URL(fileURLWithPath: root + "/conf/mesh.json"))

        let config = try MeshConfiguration.load(path: root + "/conf/mesh.json")
        let pg = try XCTUnwrap(config.balancers["pg"])
        XCTAssertEqual(config.tlsFiles(of: pg, on: "app1"), BalancerTLSFiles(cert: root + "/pki/pg.pem", key: root + "/conf/pki/pg.key"))
    }

    func testUnknownKeySuggestsTheKnownOne() {
        assertRejects(
            [("balancers.pg.tls", ["cert": "a.pem", "key": "a.key", "kye": "b.key"])],
            with: #"mesh.json: balancers.pg.tls.kye: unknown key; did you mean "key"?"#
        )
        assertRejects(
            [("balancers.pg.tls", ["cert": "a.pem", "key": "a.key", "password": "x"])],
            with: "mesh.json: balancers.pg.tls.password: unknown key; expected one of: cert, key"
        )
    }

    func testCAIsRefusedWithTheReason() {
        let reason =
            "a balancer does not verify client certificates (PostgreSQL authenticates clients end to end, "
            + #"through the balancer), so its tls block takes only "cert" and "key"; remove "#
        assertRejects(
            [("balancers.pg.tls", ["cert": "a.pem", "key": "a.key", "ca": "pki/ca.pem"])],
            with: "mesh.json: balancers.pg.tls.ca: \(reason)\"ca\""
        )
        assertRejects(
            [("balancers.pg.tls", ["cert": "a.pem", "key": "a.key", "crl": "pki/crl.pem"])],
            with: "mesh.json: balancers.pg.tls.crl: \(reason)\"crl\""
        )
    }

    func testCertAndKeyAreRequired() {
        assertRejects([("balancers.pg.tls", ["cert": "a.pem"])], with: "mesh.json: balancers.pg.tls.key: missing required key")
        assertRejects([("balancers.pg.tls", ["key": "a.key"])], with: "mesh.json: balancers.pg.tls.cert: missing required key")
        assertRejects([("balancers.pg.tls", [String: Any]())], with: "mesh.json: balancers.pg.tls.cert: missing required key")
    }

    func testValuesMustBeNonEmptyStrings() {
        assertRejects([("balancers.pg.tls", ["cert": "", "key": "a.key"])], with: "mesh.json: balancers.pg.tls.cert: must not be empty")
        assertRejects(
            [("balancers.pg.tls", ["cert": "a.pem", "key": 7])],
            with: "mesh.json: balancers.pg.tls.key: expected string, got number"
        )
        assertRejects([("balancers.pg.tls", "pki/pg.pem")], with: "mesh.json: balancers.pg.tls: expected object, got string")
    }

    func testOnlyNodePlaceholderInPaths() {
        assertRejects(
            [("balancers.pg.tls", ["cert": "pki/{balancer}.pem", "key": "a.key"])],
            with: #"mesh.json: balancers.pg.tls.cert: only {node} may appear in braces, got "pki/{balancer}.pem""#
        )
    }
}
