import Foundation
import MeshTestSupport
import XCTest

/// A `same_address` service across network namespaces, as etcd, Patroni and PostgreSQL replication
/// use it: each node's member listens on its own loopback address 127.0.1.N, and every node reaches
/// every member at that same address, meshd listening there and carrying it through the tunnel.
final class SameAddressServiceTests: NetnsTestCase {
    private static let port: UInt16 = 2380

    /// 127.0.1.N, the address node N's member binds (and the others' meshd listen on).
    private static func member(_ index: Int) -> (host: in_addr_t, port: UInt16) {
        (in_addr_t(0x7F00_0100 | index), Self.port)
    }

    func testEveryNodeReachesEveryMemberAtItsOwnAddressAndNothingElseIsExposed() throws {
        let nodes = ["n1", "n2", "n3"]
        let bed = try self.makeBed(nodes: nodes)
        // A handshake timeout (how long a connection may wait for a tunnel still coming up) far
        // above the echo's: a connection that waited for the cut-off peer would stall, not fail.
        var tunnel = TestMesh.fastTunnel
        tunnel.handshakeTimeout = "30s"
        let mesh = try self.makeMesh(bed: bed, tunnel: tunnel)
        var on: [String: String] = [:]
        for (index, node) in nodes.enumerated() {
            let server = try self.makeEchoServer(in: bed, on: node, at: Self.member(index + 1))
            on[node] = server.endpoint
        }
        XCTAssertEqual(on["n2"], "127.0.1.2:2380")
        mesh.file.services["peer"] = .init(on: on, allow: nodes, sameAddress: true)
        let processes = try nodes.map { try mesh.start($0) }
        guard mesh.waitUp(processes[0], peer: "n2"), mesh.waitUp(processes[0], peer: "n3"), mesh.waitUp(processes[1], peer: "n3")
        else { return }

        // From every node, every member answers at its own address: the local one directly, the
        // others through meshd's listener on that address.
        for from in nodes {
            for index in 1...3 {
                XCTAssertNotNil(
                    self.waitForEcho(in: bed, from: from, host: "127.0.1.\(index)", port: Int(Self.port), timeout: .seconds(10)),
                    "\(from) reaches the member at 127.0.1.\(index):\(Self.port)\n\(mesh.allLogs())"
                )
            }
        }
        let listening = try XCTUnwrap(processes[0].log(after: 0).components(separatedBy: "\n").first { $0.contains("127.0.1.2:2380") })
        XCTAssertTrue(listening.contains("peer@n2"), "n1's log names the listener and its target: \(listening)")

        // Only the mesh port is reachable from another node: the members bind loopback addresses.
        for node in nodes where node != "n3" {
            let verdict = self.echo(in: bed, from: "n3", host: bed.address(node), port: Int(Self.port), timeout: .seconds(2))
            guard case .errored = verdict else {
                return XCTFail("\(node)'s member must not be reachable at \(bed.address(node)):\(Self.port) from n3, saw \(verdict)")
            }
        }

        // The path to 127.0.1.2 from n1 goes through n2's tunnel: with n2 cut off it fails (an
        // error, not a hang, so a Patroni REST call to a dead member does not wait out its
        // timeout) while n3's member still answers at its address.
        let mark = processes[0].logMark()
        try bed.cutOff("n2")
        let down = self.waitForLogs([(processes[0], mark, "peer n2 down")], from: .now, timeout: .seconds(15))
        XCTAssertNotNil(down[0], "n1 notices n2 is cut off\n\(processes[0].logTail())")
        // While n1 redials (its SYNs vanish), not only while it backs off between dials.
        var redialing = false
        for _ in 0..<50 where !redialing {
            redialing = self.peerStates(seenBy: "n1", in: mesh)["n2"] == "connecting"
            if !redialing { Thread.sleep(forTimeInterval: 0.1) }
        }
        XCTAssertTrue(redialing, "n1 redials the cut-off n2: \(self.peerStates(seenBy: "n1", in: mesh))")
        let start = ContinuousClock.now
        let during = self.echo(in: bed, from: "n1", host: "127.0.1.2", port: Int(Self.port), timeout: .seconds(10))
        let took = ContinuousClock.now - start
        guard case .errored = during else { return XCTFail("n2's address on n1 must fail while n2 is cut off, saw \(during)") }
        print("RESULT same-address connection to a cut-off member failed after \(took)")
        // A member retrying its dead peer many times a second (etcd does about 20) gets each
        // connection reset, but n1 logs only a burst of them and then a count.
        let burstMark = processes[0].logMark()
        for _ in 0..<60 {
            _ = self.echo(in: bed, from: "n1", host: "127.0.1.2", port: Int(Self.port), timeout: .seconds(2))
        }
        let summary = processes[0].waitForLog(containing: "more clients of forward peer@n2 reset", after: burstMark, timeout: .seconds(5))
        XCTAssertNotNil(summary, "n1 sums up the resets past the burst\n\(processes[0].logTail())")
        let lines = processes[0].log(after: burstMark).components(separatedBy: "\n").filter { $0.contains("resetting client") }
        XCTAssertLessThanOrEqual(lines.count, 22, "at most a burst of 20 (plus refills) of 60 resets are logged one by one")
        XCTAssertNotNil(
            self.waitForEcho(in: bed, from: "n1", host: "127.0.1.3", port: Int(Self.port), timeout: .seconds(5)),
            "n3's member still answers at 127.0.1.3 from n1 while n2 is cut off"
        )
        try bed.heal("n2")
        XCTAssertNotNil(
            self.waitForEcho(in: bed, from: "n1", host: "127.0.1.2", port: Int(Self.port), timeout: .seconds(15)),
            "after healing, n2's member answers at 127.0.1.2 from n1 again\n\(processes[0].logTail())"
        )
    }
}
