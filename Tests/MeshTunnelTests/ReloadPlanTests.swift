import Foundation
import MeshConfig
import XCTest

@testable import MeshTunnel

/// The reload rules of `ReloadPlan`, on configs alone: what stays, what closes, what opens and
/// when, and what cannot change without a restart.
final class ReloadPlanTests: XCTestCase {
    /// app1 with two peers and two forwards; `edit` changes the JSON before parsing.
    static func config(_ edit: (inout [String: Any]) -> Void = { _ in }) throws -> MeshConfiguration {
        var tree: [String: Any] = [
            "mesh": "demo",
            "tls": ["ca": "pki/ca.pem", "cert": "pki/{node}.pem", "key": "pki/{node}.key"],
            "tunnel": ["ping_interval": "1s", "dead_after": 3],
            "nodes": [
                "app1": ["address": "127.0.1.3:7443"],
                "db1": ["address": "127.0.1.1:7443"],
                "db2": ["address": "127.0.1.2:7443"],
            ],
            "services": [
                "postgres": ["on": ["db1": "127.0.0.1:55432", "db2": "127.0.0.1:55433"], "allow": ["app1"]]
            ],
            "forwards": [
                ["on": "app1", "listen": "127.0.0.1:15432", "to": "postgres@db1"],
                ["on": "app1", "listen": "127.0.0.1:15433", "to": "postgres@db2"],
            ],
        ]
        edit(&tree)
        let data = try JSONSerialization.data(withJSONObject: tree)
        return try MeshConfiguration.parse(data, file: "mesh.json", directory: "/etc/tunnelmesh")
    }

    /// The plan for going from `old` (running: its peers linked, its forwards open) to `new`.
    func plan(from old: MeshConfiguration, to new: MeshConfiguration) throws -> ReloadPlan {
        var links: [String: Endpoint] = [:]
        for (name, node) in old.nodes where name != "app1" { links[name] = node.address }
        let forwards = Set(old.forwards(on: "app1").map(ForwardKey.init))
        return try ReloadPlan.make(node: "app1", running: old, new: new, links: links, forwards: forwards)
    }

    func testRevokedAndReauthenticatedPeersAreKeptPeersOnly() throws {
        let old = try Self.config()
        let new = try Self.config { tree in
            var nodes = tree["nodes"] as! [String: Any]
            nodes["db2"] = ["address": "127.0.1.9:7443"]  // moved: redialed anyway
            tree["nodes"] = nodes
        }
        let links = ["db1": old.nodes["db1"]!.address, "db2": old.nodes["db2"]!.address]
        let forwards = Set(old.forwards(on: "app1").map(ForwardKey.init))
        let serials = ["db1": "0A", "db2": "0B"]
        let revoked = try ReloadPlan.make(
            node: "app1",
            running: old,
            new: new,
            links: links,
            forwards: forwards,
            liveSerials: serials,
            revokedSerials: ["0A", "0B"]
        )
        XCTAssertEqual(revoked.revokedPeers, ["db1"], "db2's tunnel closes as a moved peer, not as a revoked one")
        XCTAssertEqual(revoked.reauthenticatedPeers, [])
        let trust = try ReloadPlan.make(node: "app1", running: old, new: new, links: links, forwards: forwards, trustChanged: true)
        XCTAssertEqual(trust.reauthenticatedPeers, ["db1"])
        let both = try ReloadPlan.make(
            node: "app1",
            running: old,
            new: old,
            links: links,
            forwards: forwards,
            trustChanged: true,
            liveSerials: serials,
            revokedSerials: ["0B"]
        )
        XCTAssertEqual(both.revokedPeers, ["db2"])
        XCTAssertEqual(both.reauthenticatedPeers, ["db1"], "a revoked peer is cut, not re-authenticated")
    }

    func testTheSameConfigChangesNothing() throws {
        let config = try Self.config()
        XCTAssertEqual(try self.plan(from: config, to: config), ReloadPlan())
    }

    func testAddedAndRemovedPeers() throws {
        let old = try Self.config()
        let new = try Self.config { tree in
            var nodes = tree["nodes"] as! [String: Any]
            nodes["db3"] = ["address": "127.0.1.4:7443"]
            tree["nodes"] = nodes
        }
        XCTAssertEqual(try self.plan(from: old, to: new).addedPeers, ["db3"])
        XCTAssertEqual(try self.plan(from: new, to: old).removedPeers, ["db3"])
        XCTAssertEqual(try self.plan(from: new, to: old).addedPeers, [])
    }

    func testAMovedPeerIsRedialedAndItsForwardsReopen() throws {
        let old = try Self.config()
        let new = try Self.config { tree in
            var nodes = tree["nodes"] as! [String: Any]
            nodes["db2"] = ["address": "127.0.1.9:7443"]
            tree["nodes"] = nodes
        }
        let plan = try self.plan(from: old, to: new)
        XCTAssertEqual(plan.removedPeers, ["db2"])
        XCTAssertEqual(plan.addedPeers, ["db2"])
        XCTAssertEqual(plan.removedForwards.map(\.description), ["127.0.0.1:15433 -> postgres@db2"])
        // Same address as the forward it replaces: it can only open once that one has closed.
        XCTAssertEqual(plan.openedForwards, [])
        XCTAssertEqual(plan.deferredForwards.map(\.node), ["db2"])
    }

    func testAForwardToAnotherNodeOnTheSameAddressOpensAfterTheOldCloses() throws {
        let old = try Self.config()
        let new = try Self.config { tree in
            tree["forwards"] = [
                ["on": "app1", "listen": "127.0.0.1:15432", "to": "postgres@db2"],
                ["on": "app1", "listen": "127.0.0.1:15433", "to": "postgres@db2"],
                ["on": "app1", "listen": "127.0.0.1:15434", "to": "postgres@db1"],
            ]
        }
        let plan = try self.plan(from: old, to: new)
        XCTAssertEqual(plan.removedForwards.map(\.description), ["127.0.0.1:15432 -> postgres@db1"])
        XCTAssertEqual(plan.openedForwards.map { "\($0.listen)" }, ["127.0.0.1:15434"], "a free address opens before the commit")
        XCTAssertEqual(plan.deferredForwards.map { "\($0.listen)" }, ["127.0.0.1:15432"])
        XCTAssertEqual(plan.removedPeers, [])
        XCTAssertEqual(plan.addedPeers, [])
    }

    func testWhatNeedsARestartIsRefused() throws {
        let old = try Self.config()
        let renamed = try Self.config { $0["mesh"] = "other" }
        let moved = try Self.config { tree in
            var nodes = tree["nodes"] as! [String: Any]
            nodes["app1"] = ["address": "127.0.1.8:7443"]
            tree["nodes"] = nodes
        }
        let retuned = try Self.config { $0["tunnel"] = ["ping_interval": "2s", "dead_after": 3] }
        let cases: [(MeshConfiguration, String)] = [
            (renamed, "mesh name changed from demo to other; restart meshd to join another mesh"),
            (moved, "nodes.app1.address changed; restart meshd to move the tunnel listener"),
            (retuned, "tunnel settings changed; restart meshd to apply them"),
        ]
        for (new, message) in cases {
            XCTAssertThrowsError(try self.plan(from: old, to: new)) { error in
                XCTAssertEqual("\(error)", message)
            }
        }
    }
}
