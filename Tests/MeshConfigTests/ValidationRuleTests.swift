import Foundation
import XCTest

@testable import MeshConfig

/// One test per validation rule, each asserting the exact message a person would read.
final class ValidationRuleTests: XCTestCase {
    // MARK: the file itself

    func testUnreadableFile() throws {
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("meshconfig-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: root) }

        XCTAssertThrowsError(try MeshConfiguration.load(path: root + "/missing.json")) { error in
            XCTAssertEqual("\(error)", "\(root)/missing.json: cannot read the configuration file: No such file or directory")
        }
        XCTAssertThrowsError(try MeshConfiguration.load(path: root)) { error in
            XCTAssertEqual("\(error)", "\(root): cannot read the configuration file: Is a directory")
        }
    }

    func testInvalidJSONNamesLineAndColumn() {
        assertRejects(
            json: "{\n  \"mesh\": \"demo\",\n  \"tls\": \n}\n",
            with: "mesh.json: invalid JSON at line 4, column 1: invalid value"
        )
        assertRejects(
            json: "{\n  \"mesh\": \"demo\"",
            with: "mesh.json: invalid JSON at line 2, column 17: unexpected end of file during JSON parse"
        )
    }

    func testEmptyFile() {
        assertRejects(json: " \n", with: "mesh.json: the file is empty; expected a JSON object")
    }

    func testTopLevelMustBeAnObject() {
        assertRejects(json: "[1, 2]", with: "mesh.json: the top level must be a JSON object, got array")
        assertRejects(json: "\"demo\"", with: "mesh.json: the top level must be a JSON object, got string")
    }

    func testDuplicateKey() {
        assertRejects(
            json: #"{"mesh": "demo", "nodes": {"db1": {"address": "127.0.0.1:1", "address": "127.0.0.1:2"}}}"#,
            with: "mesh.json: nodes.db1.address: duplicate key; an object may name a key only once (otherwise one value is silently lost)"
        )
    }

    // MARK: unknown keys

    func testUnknownTopLevelKeySuggestsTheKnownOne() {
        assertRejects([("balancer", [String: Any]())], with: #"mesh.json: balancer: unknown key; did you mean "balancers"?"#)
    }

    func testUnknownNestedKeySuggestsTheKnownOne() {
        assertRejects(
            [("tunnel.pign_interval", "1s")],
            with: #"mesh.json: tunnel.pign_interval: unknown key; did you mean "ping_interval"?"#
        )
        assertRejects([("nodes.db1.adress", "127.0.0.1:1")], with: #"mesh.json: nodes.db1.adress: unknown key; did you mean "address"?"#)
        assertRejects(
            [("services.postgres.postgres.monitor_usr", "x")],
            with: #"mesh.json: services.postgres.postgres.monitor_usr: unknown key; did you mean "monitor_user"?"#
        )
        assertRejects([("forwards.0.listn", "x")], with: #"mesh.json: forwards[0].listn: unknown key; did you mean "listen"?"#)
        assertRejects([("balancers.pg.on.app1.rx", "x")], with: #"mesh.json: balancers.pg.on.app1.rx: unknown key; did you mean "ro"?"#)
    }

    func testUnknownKeyWithoutCloseMatchListsTheKnownKeys() {
        assertRejects([("tls.password", "x")], with: "mesh.json: tls.password: unknown key; expected one of: ca, cert, crl, key")
    }

    // MARK: types and required keys

    func testWrongJSONType() {
        assertRejects([("mesh", 5)], with: "mesh.json: mesh: expected string, got number")
        assertRejects([("mesh", true)], with: "mesh.json: mesh: expected string, got boolean")
        assertRejects([("mesh", NSNull())], with: "mesh.json: mesh: expected string, got null")
        assertRejects([("nodes", [1])], with: "mesh.json: nodes: expected object, got array")
        assertRejects([("services.postgres.allow", "app1")], with: "mesh.json: services.postgres.allow: expected array, got string")
        assertRejects([("tunnel.dead_after", "3")], with: "mesh.json: tunnel.dead_after: expected integer, got string")
        assertRejects([("tunnel.dead_after", true)], with: "mesh.json: tunnel.dead_after: expected integer, got boolean")
        assertRejects([("tunnel.dead_after", 2.5)], with: "mesh.json: tunnel.dead_after: expected integer, got 2.5")
        assertRejects(
            [("tunnel.ping_interval", 1)],
            with: #"mesh.json: tunnel.ping_interval: expected string, got number (write durations as strings such as "500ms" or "2s")"#
        )
    }

    func testMissingRequiredKeys() {
        assertRejects([("mesh", nil)], with: "mesh.json: mesh: missing required key")
        assertRejects([("tls", nil)], with: "mesh.json: tls: missing required key")
        assertRejects([("tls.ca", nil)], with: "mesh.json: tls.ca: missing required key")
        assertRejects([("tls.cert", nil)], with: "mesh.json: tls.cert: missing required key")
        assertRejects([("tls.key", nil)], with: "mesh.json: tls.key: missing required key")
        assertRejects([("nodes", nil)], with: "mesh.json: nodes: missing required key")
        assertRejects([("nodes.db2.address", nil)], with: "mesh.json: nodes.db2.address: missing required key")
        assertRejects([("services.postgres.on", nil)], with: "mesh.json: services.postgres.on: missing required key")
        assertRejects([("forwards.0.to", nil)], with: "mesh.json: forwards[0].to: missing required key")
        assertRejects([("balancers.pg.service", nil)], with: "mesh.json: balancers.pg.service: missing required key")
    }

    func testEmptyValuesThatMeanNothing() {
        assertRejects([("tls.ca", "")], with: "mesh.json: tls.ca: must not be empty")
        assertRejects([("nodes", [String: Any]())], with: "mesh.json: nodes: declare at least one node")
        assertRejects(
            [("services.postgres.on", [String: Any]())],
            with: "mesh.json: services.postgres.on: name at least one node that serves the service"
        )
        assertRejects(
            [("balancers.pg.on.app1", [String: Any]())],
            with: #"mesh.json: balancers.pg.on.app1: needs at least one listener, "rw" or "ro""#
        )
    }

    // MARK: names

    func testMeshNameMustBeATrustDomain() {
        for bad in ["Demo", "", "de mo", "demo/x", "démo"] {
            assertRejects(
                [("mesh", bad)],
                with: "mesh.json: mesh: invalid mesh name \"\(bad)\": it is a SPIFFE trust domain, so use only lowercase "
                    + "letters, digits, '.', '-' and '_'"
            )
        }
        XCTAssertEqual(accepted([("mesh", "prod.example_1-eu")])?.mesh, "prod.example_1-eu")
    }

    func testNodeNameRules() {
        let rule = "use 1-63 characters of a-z, 0-9, '_' and '-', starting with a letter or digit"
        assertRejects([("nodes.DB3", ["address": "127.0.1.9:7443"])], with: "mesh.json: nodes.DB3: invalid node name \"DB3\": \(rule)")
        assertRejects([("nodes.-db3", ["address": "127.0.1.9:7443"])], with: "mesh.json: nodes.-db3: invalid node name \"-db3\": \(rule)")
        var tree = ConfigFixtures.designTree()
        tree["nodes"] = ["db.3": ["address": "127.0.1.9:7443"]]
        assertRejects(data: ConfigFixtures.data(tree), with: "mesh.json: nodes[\"db.3\"]: invalid node name \"db.3\": \(rule)")
        let long = String(repeating: "a", count: 64)
        assertRejects(
            [("nodes.\(long)", ["address": "127.0.1.9:7443"])],
            with: "mesh.json: nodes.\(long): invalid node name \"\(long)\": \(rule)"
        )
        XCTAssertNotNil(accepted([("nodes.\(String(long.dropFirst()))", ["address": "127.0.1.9:7443"])]), "63 characters are fine")
        XCTAssertNotNil(accepted([("nodes.9_x-y", ["address": "127.0.1.9:7443"])]))
    }

    func testServiceAndBalancerNamesFollowTheNodeNameRule() {
        let rule = "use 1-63 characters of a-z, 0-9, '_' and '-', starting with a letter or digit"
        assertRejects(
            [("services.Web", ["on": ["db1": "127.0.0.1:80"]])],
            with: "mesh.json: services.Web: invalid service name \"Web\": \(rule)"
        )
        assertRejects(
            [("balancers._pg", ["service": "postgres", "on": ["db1": ["rw": "127.0.0.1:6432"]]])],
            with: "mesh.json: balancers._pg: invalid balancer name \"_pg\": \(rule)"
        )
    }

    // MARK: node addresses

    func testNodeAddressMustBeHostPort() {
        assertRejects([("nodes.db1.address", "db1")], with: #"mesh.json: nodes.db1.address: expected host:port, got "db1""#)
        assertRejects([("nodes.db1.address", "127.0.0.1:")], with: #"mesh.json: nodes.db1.address: expected host:port, got "127.0.0.1:""#)
        assertRejects([("nodes.db1.address", "::1:7443")], with: #"mesh.json: nodes.db1.address: expected host:port, got "::1:7443""#)
        assertRejects(
            [("nodes.db1.address", "unix:/run/mesh.sock")],
            with: #"mesh.json: nodes.db1.address: expected host:port, got "unix:/run/mesh.sock"; peers reach the mesh listener over TCP"#
        )
        XCTAssertEqual(accepted([("nodes.db1.address", "[::1]:7443")])?.nodes["db1"]?.address, .tcp(host: "::1", port: 7443))
    }

    func testNodeAddressPortRange() {
        assertRejects(
            [("nodes.db1.address", "127.0.0.1:70000")],
            with: #"mesh.json: nodes.db1.address: port 70000 is out of range 1-65535 in "127.0.0.1:70000""#
        )
        assertRejects(
            [("nodes.db1.address", "127.0.0.1:0")],
            with: #"mesh.json: nodes.db1.address: port 0 is out of range 1-65535 in "127.0.0.1:0""#
        )
        XCTAssertNotNil(accepted([("nodes.db1.address", "127.0.0.1:65535")]))
    }

    func testDuplicateNodeAddresses() {
        assertRejects(
            [("nodes.db2.address", "127.0.1.1:7443")],
            with: "mesh.json: nodes.db2.address: 127.0.1.1:7443 is already the address of node db1; give each node its own"
        )
    }

    // MARK: durations and numbers

    func testMalformedDuration() {
        for bad in ["1 s", "2", "-1s", "1.s", "2S", "", "1d"] {
            assertRejects(
                [("tunnel.ping_interval", bad)],
                with: "mesh.json: tunnel.ping_interval: expected a duration such as \"500ms\", \"2s\" or \"1m\", got \"\(bad)\""
            )
        }
        assertRejects(
            [("balancers.pg.max_lag", "ten seconds")],
            with: #"mesh.json: balancers.pg.max_lag: expected a duration such as "500ms", "2s" or "1m", got "ten seconds""#
        )
    }

    func testZeroDurationWhereItMakesNoSense() {
        for key in ["ping_interval", "backoff_min", "backoff_max", "handshake_timeout", "reauthenticate_before"] {
            assertRejects([("tunnel.\(key)", "0s")], with: "mesh.json: tunnel.\(key): must be greater than zero, got \"0s\"")
        }
        assertRejects(
            [("services.postgres.postgres.probe_interval", "0ms")],
            with: #"mesh.json: services.postgres.postgres.probe_interval: must be greater than zero, got "0ms""#
        )
    }

    func testDeadAfterAtLeastOne() {
        assertRejects([("tunnel.dead_after", 0)], with: "mesh.json: tunnel.dead_after: must be at least 1, got 0")
        assertRejects([("tunnel.dead_after", -2)], with: "mesh.json: tunnel.dead_after: must be at least 1, got -2")
        assertRejects([("tunnel.max_streams_per_peer", 0)], with: "mesh.json: tunnel.max_streams_per_peer: must be at least 1, got 0")
        assertRejects([("tunnel.max_pending_handshakes", 0)], with: "mesh.json: tunnel.max_pending_handshakes: must be at least 1, got 0")
        XCTAssertEqual(accepted([("tunnel.dead_after", 1)])?.tunnel.deadAfter, 1)
    }

    func testBackoffMaxNotBelowBackoffMin() {
        assertRejects(
            [("tunnel.backoff_min", "500ms"), ("tunnel.backoff_max", "100ms")],
            with: "mesh.json: tunnel.backoff_max: backoff_max (100ms) must not be less than backoff_min (500ms)"
        )
        // Only backoff_min written: the default backoff_max (2s) is what it collides with.
        assertRejects(
            [("tunnel.backoff_max", nil), ("tunnel.backoff_min", "2.5s")],
            with: "mesh.json: tunnel.backoff_min: backoff_max (2s) must not be less than backoff_min (2.5s)"
        )
        XCTAssertNotNil(accepted([("tunnel.backoff_min", "2s")]), "equal is fine")
    }

    // MARK: services

    func testServiceOnKeysMustBeDeclaredNodes() {
        assertRejects(
            [("services.postgres.on.db9", "127.0.0.1:5432")],
            with: #"mesh.json: services.postgres.on.db9: unknown node "db9"; declared nodes: app1, db1, db2"#
        )
    }

    func testServiceTargetMustBeAnEndpoint() {
        assertRejects(
            [("services.postgres.on.db1", "localhost")],
            with: #"mesh.json: services.postgres.on.db1: expected host:port or unix:/path, got "localhost""#
        )
        let long = "/" + String(repeating: "s", count: 120)
        assertRejects(
            [("services.postgres.on.db1", "unix:" + long)],
            with:
                "mesh.json: services.postgres.on.db1: unix socket path \"\(long)\" is \(long.utf8.count) bytes long; the limit is \(Endpoint.maxUnixPathLength), so use a shorter path"
        )
    }

    func testPostgresServiceSocketIsNamedForItsPort() {
        assertRejects(
            [("services.postgres.on.db1", "unix:/run/pg.sock")],
            with:
                #"mesh.json: services.postgres.on.db1: a PostgreSQL server's Unix socket is named .s.PGSQL.<port> (e.g. unix:/var/run/postgresql/.s.PGSQL.5432), got "/run/pg.sock""#
        )
        let config = accepted([("services.postgres.on.db1", "unix:/var/run/postgresql/.s.PGSQL.5433")])
        XCTAssertEqual(config?.services["postgres"]?.on["db1"], .unix(path: "/var/run/postgresql/.s.PGSQL.5433"))
        // A service without a postgres block may use any socket name.
        XCTAssertNotNil(
            accepted([("services.postgres.postgres", nil), ("balancers", nil), ("services.postgres.on.db1", "unix:/run/pg.sock")])
        )
    }

    func testPostgresSocketPathSplitsDirectoryAndPort() {
        XCTAssertEqual(
            PostgresSocketPath("/var/run/postgresql/.s.PGSQL.5432"),
            PostgresSocketPath(directory: "/var/run/postgresql", port: 5432)
        )
        XCTAssertEqual(PostgresSocketPath("/.s.PGSQL.1"), PostgresSocketPath(directory: "/", port: 1))
        for bad in [
            ".s.PGSQL.5432", "/tmp/.s.PGSQL.", "/tmp/.s.PGSQL.0", "/tmp/.s.PGSQL.65536", "/tmp/.s.PGSQL.54x2", "/tmp/pg.sock",
            "/tmp/.s.PGSQL.5432.lock",
        ] {
            XCTAssertNil(PostgresSocketPath(bad), bad)
        }
    }

    func testAllowEntriesMustBeDeclaredNodesOrStar() {
        assertRejects(
            [("services.postgres.allow", ["app1", "ap1"])],
            with: #"mesh.json: services.postgres.allow[1]: unknown node "ap1"; declared nodes: app1, db1, db2 (or "*" for every node)"#
        )
        assertRejects(
            [("services.postgres.allow", ["*", "app1"])],
            with: #"mesh.json: services.postgres.allow[1]: "*" already allows every node; list either "*" or node names, not both"#
        )
        assertRejects([("services.postgres.allow", [7])], with: "mesh.json: services.postgres.allow[0]: expected string, got number")
    }

    // MARK: forwards

    func testForwardOnMustBeDeclared() {
        assertRejects([("forwards.0.on", "app9")], with: #"mesh.json: forwards[0].on: unknown node "app9"; declared nodes: app1, db1, db2"#)
    }

    func testForwardToMustBeServiceAtNode() {
        for bad in ["postgres", "postgres@", "@db1", "a@b@c"] {
            assertRejects([("forwards.0.to", bad)], with: "mesh.json: forwards[0].to: expected \"service@node\", got \"\(bad)\"")
        }
    }

    func testForwardToUnknownServiceOrNode() {
        assertRejects([("forwards.0.to", "pg@db1")], with: #"mesh.json: forwards[0].to: unknown service "pg"; declared services: postgres"#)
        assertRejects(
            [("services", nil), ("balancers", nil), ("forwards.0.to", "pg@db1")],
            with: #"mesh.json: forwards[0].to: unknown service "pg"; no services are declared"#
        )
        assertRejects(
            [("forwards.0.to", "postgres@db9")],
            with: #"mesh.json: forwards[0].to: unknown node "db9"; declared nodes: app1, db1, db2"#
        )
    }

    func testForwardToServiceNotServedOnThatNode() {
        assertRejects(
            [("forwards.0.to", "postgres@app1")],
            with: #"mesh.json: forwards[0].to: service "postgres" is not served on node app1; it is served on db1, db2"#
        )
    }

    func testForwardListenMustBeAnEndpoint() {
        assertRejects(
            [("forwards.0.listen", "15432")],
            with: #"mesh.json: forwards[0].listen: expected host:port or unix:/path, got "15432""#
        )
    }

    // MARK: listener conflicts

    func testForwardOnTheNodesOwnMeshAddress() {
        assertRejects(
            [("forwards.0.listen", "127.0.1.3:7443")],
            with: "mesh.json: forwards[0].listen: 127.0.1.3:7443 on node app1 is already used by nodes.app1.address"
        )
    }

    func testTwoForwardsOnTheSameEndpoint() {
        assertRejects(
            [("forwards.1", ["on": "app1", "listen": "127.0.0.1:15432", "to": "postgres@db2"])],
            with: "mesh.json: forwards[1].listen: 127.0.0.1:15432 on node app1 is already used by forwards[0].listen"
        )
        // The same endpoint on different nodes is fine: they are different machines.
        XCTAssertNotNil(accepted([("forwards.1", ["on": "db2", "listen": "127.0.0.1:15432", "to": "postgres@db1"])]))
    }

    func testBalancerListenerCollidesWithForward() {
        assertRejects(
            [("forwards.0.listen", "127.0.0.1:6432")],
            with: "mesh.json: balancers.pg.on.app1.rw: 127.0.0.1:6432 on node app1 is already used by forwards[0].listen"
        )
    }

    func testBalancerRwAndRoOnTheSameEndpoint() {
        assertRejects(
            [("balancers.pg.on.app1.ro", "127.0.0.1:6432")],
            with: "mesh.json: balancers.pg.on.app1.ro: 127.0.0.1:6432 on node app1 is already used by balancers.pg.on.app1.rw"
        )
    }

    func testWildcardListenerOverlapsASpecificOne() {
        assertRejects(
            [("balancers.pg.on.app1.ro", "0.0.0.0:15432")],
            with: "mesh.json: balancers.pg.on.app1.ro: 0.0.0.0:15432 on node app1 overlaps 127.0.0.1:15432 used by forwards[0].listen"
        )
    }

    func testMetricsListenerCollides() {
        assertRejects(
            [("metrics", "127.0.0.1:15432")],
            with: "mesh.json: forwards[0].listen: 127.0.0.1:15432 on node app1 is already used by metrics"
        )
    }

    func testForwardListenerNamesMustBeUnique() {
        assertRejects(
            [("forwards.1", ["on": "app1", "listen": "127.0.0.2:15432", "to": "postgres@db2"])],
            with: "mesh.json: forwards[1].listen: listener name \"forward-15432\" on node app1 is already used by "
                + "forwards[0].listen; socket activation needs unique names, so pick another port or socket name"
        )
    }

    // MARK: balancers

    func testBalancerServiceMustExist() {
        assertRejects(
            [("balancers.pg.service", "pgsql")],
            with: #"mesh.json: balancers.pg.service: unknown service "pgsql"; declared services: postgres"#
        )
    }

    func testBalancerServiceNeedsAPostgresBlock() {
        assertRejects(
            [("services.postgres.postgres", nil)],
            with:
                #"mesh.json: balancers.pg.service: service "postgres" has no "postgres" block; a balancer needs one to learn which node is the primary"#
        )
    }

    func testBalancerOnKeysMustBeDeclaredNodes() {
        assertRejects(
            [("balancers.pg.on.app2", ["rw": "127.0.0.1:7432"])],
            with: #"mesh.json: balancers.pg.on.app2: unknown node "app2"; declared nodes: app1, db1, db2"#
        )
    }

    func testRoFallbackIsPrimaryOrNone() {
        assertRejects(
            [("balancers.pg.ro_fallback", "any")],
            with: #"mesh.json: balancers.pg.ro_fallback: expected "primary" or "none", got "any""#
        )
    }

    // MARK: tls

    func testOnlyNodePlaceholderInTLSPaths() {
        assertRejects(
            [("tls.cert", "pki/{name}.pem")],
            with: #"mesh.json: tls.cert: only {node} may appear in braces, got "pki/{name}.pem""#
        )
    }

    func testNodePlaceholderIsOnlySubstitutedInTLSPaths() throws {
        let config = try XCTUnwrap(accepted([("nodes.db1.control", "run/{node}.sock")]))
        XCTAssertEqual(config.nodes["db1"]?.control, "/etc/tunnelmesh/run/{node}.sock")
    }

    func testControlSocketPathLength() {
        let long = String(repeating: "c", count: 110)
        assertRejects(
            [("nodes.db1.control", long)],
            with:
                "mesh.json: nodes.db1.control: unix socket path \"/etc/tunnelmesh/\(long)\" is 126 bytes long; the limit is \(Endpoint.maxUnixPathLength), so use a shorter path"
        )
    }
}
