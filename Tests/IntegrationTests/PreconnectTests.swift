import Foundation
import MeshTestSupport
import XCTest

/// A `postgres` service with `preconnect`, through the balancer to real PostgreSQL: the serving
/// node (db1) keeps connections to PostgreSQL open ahead of streams, so a client's session runs
/// on a backend the postmaster forked before the client connected, one backend per client all
/// the same; a reload to `preconnect: 0` closes them and sessions get fresh backends again.
final class PreconnectTests: MeshTestCase {
    /// The backend of a session through rw (or another balancer listener), and how many seconds
    /// before the client started it was started (`backend_start` is when the postmaster forked it;
    /// PostgreSQL and this test read the same clock): positive for a backend forked ahead of the
    /// client, negative for one forked when the client connected. Throws when psql fails.
    private func backend(_ fixture: BalancerFixture, at listener: (host: String, port: Int)? = nil) throws -> (pid: Int, lead: Double) {
        let sql = "SELECT pid || ' ' || extract(epoch from backend_start) FROM pg_stat_activity WHERE pid = pg_backend_pid()"
        let clientStart = Date().timeIntervalSince1970
        let result: CommandResult
        if let listener {
            result = try Command.run(
                fixture.psqlPath,
                [
                    "-X", "-A", "-t", "-d", "host=\(listener.host) port=\(listener.port) user=postgres dbname=postgres sslmode=disable",
                    "-c", sql,
                ],
                timeout: .seconds(20)
            )
        } else {
            result = try fixture.psql(.rw, sql)
        }
        guard result.status == 0 else { throw PostgresCluster.Problem("psql failed: \(result.output)") }
        let fields = result.stdout.split(whereSeparator: \.isWhitespace)
        guard fields.count == 2, let pid = Int(fields[0]), let started = Double(fields[1]) else {
            throw PostgresCluster.Problem("unexpected answer: \(result.output)")
        }
        return (pid, clientStart - started)
    }

    /// Waits until a session gets a backend forked before its client: the serving node's spares
    /// are open (the sessions before them asked for the service and started them).
    private func sparesOpen(_ fixture: BalancerFixture, at listener: (host: String, port: Int)? = nil) -> Bool {
        fixture.wait(timeout: .seconds(20)) { ((try? self.backend(fixture, at: listener))?.lead ?? -1) > 0 }
    }

    func testSessionsRunOnBackendsForkedBeforeTheClientAndAReloadTurnsItOff() throws {
        let fixture = try BalancerFixture(test: self, range: 86, databases: 1)
        fixture.mesh.file.services["postgres"]?.preconnect = 2
        try fixture.start()
        XCTAssertTrue(fixture.waitRouted(primary: "db1", readers: ["db1"]), fixture.logs())

        // Once the spares are open, each of the next sessions gets one, forked before its client.
        XCTAssertTrue(self.sparesOpen(fixture), "no session got a backend forked ahead of it\n\(fixture.logs())")
        var pids: Set<Int> = []
        for session in 1...3 {
            let backend = try self.backend(fixture)
            XCTAssertGreaterThan(
                backend.lead,
                0,
                "session \(session): its backend started \(backend.lead) s before the client\n\(fixture.logs())"
            )
            pids.insert(backend.pid)
        }
        // A spare serves one client and is never reused: three sessions, three backends.
        XCTAssertEqual(pids.count, 3)

        // Without preconnect, a session's backend is forked when its client arrives.
        fixture.mesh.file.services["postgres"]?.preconnect = nil
        try fixture.mesh.writeConfig()
        for node in ["db1", "app1"] {
            let reload = try fixture.mesh.meshctl(node, ["reload"])
            XCTAssertEqual(reload.status, 0, reload.output)
        }
        let lead = try self.backend(fixture).lead
        XCTAssertLessThan(lead, 0, "after the reload: a backend started \(lead) s before the client\n\(fixture.logs())")
    }

    /// A balancer on the database node itself reaches its own PostgreSQL without a tunnel (a
    /// splice), and takes spares there too.
    func testABalancerOnTheDatabaseNodeTakesSparesForItsOwnPostgreSQL() throws {
        let fixture = try BalancerFixture(test: self, range: 87, databases: 1)
        let host = fixture.mesh.host("db1")
        let rw = (host: host, port: try fixture.mesh.freePort(host))
        let ro = try fixture.mesh.freePort(host)
        fixture.mesh.file.balancers?["pg"]?.on["db1"] = .init(rw: "\(host):\(rw.port)", ro: "\(host):\(ro)")
        fixture.mesh.file.services["postgres"]?.allow = ["app1", "db1"]
        fixture.mesh.file.services["postgres"]?.preconnect = 2
        try fixture.start()
        XCTAssertTrue(self.sparesOpen(fixture, at: rw), "no session got a backend forked ahead of it\n\(fixture.logs())")
        var pids: Set<Int> = []
        for session in 1...3 {
            let backend = try self.backend(fixture, at: rw)
            XCTAssertGreaterThan(
                backend.lead,
                0,
                "session \(session) on db1's own balancer: backend started \(backend.lead) s before the client"
            )
            pids.insert(backend.pid)
        }
        XCTAssertEqual(pids.count, 3)
    }
}
