import Foundation
import MeshTestSupport
import NIOCore
import XCTest

/// Bulk data and many concurrent streams through real meshd tunnels.
final class TunnelTrafficTests: MeshTestCase {
    /// 64 MiB of random bytes go out through a forward and come back from the echo service: the
    /// SHA-256 of what came back equals what was sent, on three routes of a 3-node mesh at once:
    /// app1 -> db1 and db1 -> db2 (streams opened by the dialing node) and db2 -> app1 (opened on
    /// behalf of the accepting node).
    func testRoundTrip64MiBIsIdentical() throws {
        let mesh = try self.makeMesh(range: 1, nodes: ["app1", "db1", "db2"])
        let echo1 = try self.makeEchoServer()
        let echo2 = try self.makeEchoServer()
        let echo3 = try self.makeEchoServer()
        mesh.addService(
            "echo",
            on: ["db1": echo1.endpoint, "db2": echo2.endpoint, "app1": echo3.endpoint],
            allow: ["app1", "db1", "db2"]
        )
        let routes = [
            ("app1 -> db1", try mesh.addForward(on: "app1", to: "echo@db1")),
            ("db1 -> db2", try mesh.addForward(on: "db1", to: "echo@db2")),
            ("db2 -> app1", try mesh.addForward(on: "db2", to: "echo@app1")),
        ]
        let app1 = try mesh.start("app1")
        let db1 = try mesh.start("db1")
        let db2 = try mesh.start("db2")
        guard mesh.waitUp(app1, peer: "db1"), mesh.waitUp(app1, peer: "db2"), mesh.waitUp(db1, peer: "db2"),
            mesh.waitUp(db2, peer: "app1")
        else { return }

        let size = 64 << 20
        let payloads = routes.map { _ in self.randomBuffer(size) }
        let started = ContinuousClock.now
        let outcomes = zip(routes, payloads).map { route, payload in
            StreamClient.start(group: self.group, host: route.1.host, port: route.1.port, payload: payload, timeout: .seconds(120))
        }
        for (index, future) in outcomes.enumerated() {
            let outcome = try future.wait()
            let route = routes[index].0
            XCTAssertEqual(outcome.end, .eof, "\(route): stream should end with a clean EOF")
            XCTAssertEqual(outcome.received.readableBytes, size, "\(route): echoed byte count")
            XCTAssertEqual(SHA256Digest.hex(outcome.received), SHA256Digest.hex(payloads[index]), "\(route): SHA-256 of the echo")
        }
        print("round trip: 3 x 64 MiB echoed through three tunnels at once in \((ContinuousClock.now - started).milliseconds) ms")
    }

    /// 1,000 client connections at once through one forward (so one tunnel, 1,000 HTTP/2 streams),
    /// each echoing its own distinct payload.
    func testThousandConcurrentStreamsAllComplete() throws {
        let mesh = try self.makeMesh(range: 2, nodes: ["app1", "db1"])
        let forward = try self.addEchoForward(mesh)
        let app1 = try mesh.start("app1")
        _ = try mesh.start("db1")
        guard mesh.waitUp(app1, peer: "db1") else { return }

        let count = 1000
        let block = self.randomBuffer(64 * 1024)
        let started = ContinuousClock.now
        var payloads: [ByteBuffer] = []
        var futures: [EventLoopFuture<StreamOutcome>] = []
        for index in 0..<count {
            // Distinct per stream: its index and a slice of random bytes of varying length.
            var payload = ByteBuffer()
            payload.writeString("stream \(index)\n")
            payload.writeImmutableBuffer(block.getSlice(at: (index * 37) % 1024, length: 1024 + (index * 61) % 8192)!)
            payloads.append(payload)
            futures.append(
                StreamClient.start(
                    group: self.group,
                    host: forward.host,
                    port: forward.port,
                    payload: payload,
                    timeout: .seconds(90)
                )
            )
        }
        var ends: [String: Int] = [:]
        var wrong = 0
        for (index, future) in futures.enumerated() {
            let outcome = try future.wait()
            let bytes =
                outcome.received == payloads[index]
                ? "echo ok"
                : outcome.received.readableBytes == 0 ? "nothing echoed" : "wrong echo"
            ends["\(outcome.end), \(bytes)", default: 0] += 1
            if outcome.end != .eof || outcome.received != payloads[index] { wrong += 1 }
        }
        print("1000 streams: \(ends) in \((ContinuousClock.now - started).milliseconds) ms")
        XCTAssertEqual(wrong, 0, "streams that ended wrongly or echoed the wrong bytes; endings: \(ends)")
        XCTAssertTrue(self.echoWorks(host: forward.host, port: forward.port), "the tunnel still works after the burst")
    }
}
