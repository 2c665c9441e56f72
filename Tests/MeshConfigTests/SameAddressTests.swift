import XCTest

@testable import MeshConfig

/// `same_address` services: each node's target is reachable at that same address from every other
/// allowed node, through a listener meshd opens there.
final class SameAddressTests: XCTestCase {
    /// The design example plus an etcd peer service on db1 and db2 reachable at the same address.
    private func etcd(_ edits: [(String, Any?)] = []) -> [(String, Any?)] {
        [
            ("services.etcd.on", ["db1": "127.0.1.1:2380", "db2": "127.0.1.2:2380"]),
            ("services.etcd.allow", ["db1", "db2", "app1"]),
            ("services.etcd.same_address", true),
        ] + edits
    }

    func testEveryOtherAllowedNodeListensOnEachServingNodesAddress() throws {
        let config = try XCTUnwrap(accepted(self.etcd()))
        XCTAssertEqual(
            config.sameAddressForwards(on: "db1"),
            [
                ForwardSettings(
                    on: "db1",
                    listen: .tcp(host: "127.0.1.2", port: 2380),
                    service: "etcd",
                    node: "db2",
                    listenerName: "etcd@db2"
                )
            ]
        )
        XCTAssertEqual(config.sameAddressForwards(on: "db2").map(\.listen), [.tcp(host: "127.0.1.1", port: 2380)])
        XCTAssertEqual(config.sameAddressForwards(on: "app1").map(\.listenerName), ["etcd@db1", "etcd@db2"])
        // The declared forward comes first, then the same-address ones: everything that opens
        // forwards (meshd, reloads, socket activation) sees both.
        XCTAssertEqual(config.forwards(on: "app1").map(\.listenerName), ["forward-15432", "etcd@db1", "etcd@db2"])
        XCTAssertEqual(config.forwards.count, 1, "`forwards` stays what the file's forwards array declares")
    }

    func testANodeNotAllowedGetsNoListeners() throws {
        let config = try XCTUnwrap(accepted(self.etcd([("services.etcd.allow", ["db1", "db2"])])))
        XCTAssertEqual(config.sameAddressForwards(on: "app1"), [])
        XCTAssertEqual(config.sameAddressForwards(on: "db1").count, 1)
        let everyone = try XCTUnwrap(accepted(self.etcd([("services.etcd.allow", ["*"])])))
        XCTAssertEqual(everyone.sameAddressForwards(on: "app1").count, 2)
    }

    func testWithoutTheKeyOrWithFalseNothingIsAdded() throws {
        let off = try XCTUnwrap(accepted(self.etcd([("services.etcd.same_address", false)])))
        XCTAssertEqual(off.sameAddressForwards(on: "app1"), [])
        XCTAssertFalse(off.services["etcd"]!.sameAddress)
        let absent = try XCTUnwrap(accepted(self.etcd([("services.etcd.same_address", nil)])))
        XCTAssertEqual(absent.forwards(on: "app1").count, 1)
    }

    func testTheValueMustBeABoolean() {
        assertRejects(
            self.etcd([("services.etcd.same_address", "yes")]),
            with: "mesh.json: services.etcd.same_address: expected true or false, got string"
        )
        assertRejects(
            self.etcd([("services.etcd.same_address", 1)]),
            with: "mesh.json: services.etcd.same_address: expected true or false, got number"
        )
    }

    func testTargetsMustBeLoopbackIPv4() {
        let rule =
            "a same_address service is reached at the same address from every allowed node, where meshd listens on it in plaintext: "
            + "use a loopback address of the node's own, such as 127.0.1.N:port, got "
        for (target, shown) in [
            ("10.0.0.5:2380", "10.0.0.5:2380"), ("0.0.0.0:2380", "0.0.0.0:2380"), ("localhost:2380", "localhost:2380"),
            ("[::1]:2380", "[::1]:2380"), ("unix:/run/etcd.sock", "unix:/run/etcd.sock"), ("127.0.1.256:2380", "127.0.1.256:2380"),
        ] {
            assertRejects(
                self.etcd([("services.etcd.on.db2", target)]),
                with: "mesh.json: services.etcd.on.db2: \(rule)\"\(shown)\""
            )
        }
    }

    func testTwoNodesCannotShareAnAddress() {
        assertRejects(
            self.etcd([("services.etcd.on.db2", "127.0.1.1:2380")]),
            with: "mesh.json: services.etcd.on.db2: 127.0.1.1:2380 is also node db1's address for this service; with same_address "
                + "every node needs an address of its own (e.g. 127.0.1.N with N the node's number)"
        )
    }

    func testAListenerMayNotTakeAnAddressAForwardUses() {
        assertRejects(
            self.etcd([("forwards.0.listen", "127.0.1.1:2380")]),
            with: "mesh.json: services.etcd.on.db1: 127.0.1.1:2380 on node app1 is already used by forwards[0].listen"
        )
    }

    func testAListenerMayNotTakeTheAddressOfTheNodesOwnService() {
        // db2's PostgreSQL binds 127.0.1.1:5432, where db2's meshd would reach db1's etcd.
        assertRejects(
            self.etcd([("services.etcd.on.db1", "127.0.1.1:5432"), ("services.postgres.on.db2", "127.0.1.1:5432")]),
            with: "mesh.json: services.etcd.on.db1: 127.0.1.1:5432 is where meshd on node db2 reaches etcd@db1 (same_address), "
                + "but node db2's own service \"postgres\" uses 127.0.1.1:5432 too; give one of them another address"
        )
    }
}
