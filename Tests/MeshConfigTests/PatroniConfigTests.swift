import Foundation
import XCTest

@testable import MeshConfig

/// `postgres.patroni`: a service's PostgreSQL probe also asks each node's Patroni REST API, whose
/// address the named service's `on` gives.
final class PatroniConfigTests: XCTestCase {
    static var api: (String, Any?) { ("services.patroni-api", ["on": ["db1": "127.0.1.1:8008", "db2": "127.0.1.2:8008"]]) }
    static var key: (String, Any?) { ("services.postgres.postgres.patroni", "patroni-api") }

    func testResolvedToEachServingNodesAPI() throws {
        let config = try XCTUnwrap(accepted([Self.api, Self.key]))
        XCTAssertEqual(
            config.services["postgres"]?.postgres?.patroni,
            PatroniSettings(
                service: "patroni-api",
                api: ["db1": .tcp(host: "127.0.1.1", port: 8008), "db2": .tcp(host: "127.0.1.2", port: 8008)]
            )
        )
    }

    func testWithoutTheKeyNothingChanges() throws {
        let config = try XCTUnwrap(accepted([Self.api]))
        XCTAssertNil(config.services["postgres"]?.postgres?.patroni)
        XCTAssertEqual(config.services["postgres"]?.postgres, PostgresSettings())
    }

    /// Only the nodes serving PostgreSQL are asked; an API on another node (a witness) is fine.
    func testAPIsOfOtherNodesAreIgnored() throws {
        let config = try XCTUnwrap(accepted([Self.api, Self.key, ("services.patroni-api.on.app1", "127.0.1.3:8008")]))
        XCTAssertEqual(config.services["postgres"]?.postgres?.patroni?.api.keys.sorted(), ["db1", "db2"])
    }

    func testUnknownService() {
        assertRejects(
            [Self.key],
            with:
                #"mesh.json: services.postgres.postgres.patroni: unknown service "patroni-api"; declare it with each node's Patroni REST API address in "on" (e.g. "patroni-api": {"on": {"db1": "127.0.1.1:8008"}})"#
        )
    }

    func testNotTheServiceItself() {
        assertRejects(
            [("services.postgres.postgres.patroni", "postgres")],
            with:
                #"mesh.json: services.postgres.postgres.patroni: names this service itself; name the service whose "on" gives each node's Patroni REST API (restapi.listen, e.g. "patroni-api": {"on": {"db1": "127.0.1.1:8008"}})"#
        )
    }

    func testEveryServingNodeNeedsAnAPI() {
        assertRejects(
            [Self.api, Self.key, ("services.patroni-api.on.db2", nil)],
            with:
                #"mesh.json: services.patroni-api.on: no address for node db2, which serves "postgres" with "patroni": "patroni-api"; add "db2": "HOST:PORT" (its Patroni REST API)"#
        )
    }

    func testAPIIsTCP() {
        assertRejects(
            [Self.api, Self.key, ("services.patroni-api.on.db1", "unix:/run/patroni.sock")],
            with:
                #"mesh.json: services.patroni-api.on.db1: Patroni's REST API listens on TCP; expected host:port (restapi.listen), got "unix:/run/patroni.sock""#
        )
    }

    func testValueIsAServiceName() {
        assertRejects(
            [Self.api, ("services.postgres.postgres.patroni", "")],
            with: "mesh.json: services.postgres.postgres.patroni: must not be empty"
        )
        assertRejects(
            [Self.api, ("services.postgres.postgres.patroni", ["patroni-api"])],
            with: "mesh.json: services.postgres.postgres.patroni: expected string, got array"
        )
        assertRejects(
            [Self.api, ("services.postgres.postgres.patroni", "Patroni API")],
            with: #"mesh.json: services.postgres.postgres.patroni: invalid service name "Patroni API": \#(MeshNames.nameRule)"#
        )
    }

    /// A moved API restarts the probe on reload: the addresses are part of the postgres settings.
    func testAMovedAPIChangesThePostgresSettings() throws {
        let before = try XCTUnwrap(accepted([Self.api, Self.key]))
        let after = try XCTUnwrap(accepted([Self.api, Self.key, ("services.patroni-api.on.db1", "127.0.1.1:8009")]))
        XCTAssertNotEqual(before.services["postgres"], after.services["postgres"])
    }
}
