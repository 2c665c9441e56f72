import Foundation
import MeshTestSupport
import NIOCore
import XCTest

/// End-to-end backpressure: a consumer that stops reading stalls the producer instead of filling
/// meshd's memory, and once it reads again every byte arrives intact.
final class BackpressureTests: MeshTestCase {
    private static let chunk = 64 * 1024
    private static let total = 1 << 30
    private static let rssLimit = 100 << 20

    /// The stream's bytes: 64 KiB chunks cut from one random MiB, each stamped with its index so a
    /// reordered or repeated chunk changes the hash.
    private struct Pattern {
        let block: [UInt8]

        func chunk(_ index: Int) -> [UInt8] {
            let start = (index * BackpressureTests.chunk) % block.count
            var bytes = Array(self.block[start..<(start + BackpressureTests.chunk)])
            withUnsafeBytes(of: UInt64(index).littleEndian) { bytes.replaceSubrange(0..<8, with: $0) }
            return bytes
        }

        /// The bytes from stream offset `offset` to the end of its chunk.
        func bytes(from offset: Int) -> [UInt8] {
            Array(self.chunk(offset / BackpressureTests.chunk).dropFirst(offset % BackpressureTests.chunk))
        }

        func sha256(ofFirst count: Int) -> String {
            let digest = SHA256Digest()
            var offset = 0
            while offset < count {
                let bytes = self.chunk(offset / BackpressureTests.chunk).prefix(count - offset)
                bytes.withUnsafeBytes { digest.update($0) }
                offset += bytes.count
            }
            return digest.finish()
        }
    }

    func testStalledReaderStallsWriterAndMeshdMemoryStaysBounded() throws {
        let mesh = try self.makeMesh(range: 14, nodes: ["app1", "db1"])
        let reader = try self.makeHeldReader()
        mesh.addService("sink", on: ["db1": reader.endpoint], allow: ["app1"])
        let forward = try mesh.addForward(on: "app1", to: "sink@db1")
        let app1 = try mesh.start("app1")
        let db1 = try mesh.start("db1")
        guard mesh.waitUp(app1, peer: "db1") else { return }
        let pattern = Pattern(block: Array(self.randomBuffer(1 << 20).readableBytesView))

        let client = try TCPSocket.connect(host: forward.host, port: forward.port)
        defer { client.close() }
        XCTAssertNotNil(waitBounded(reader.connection, timeout: .seconds(10)), "the stream never reached the service\n\(mesh.allLogs())")

        // Phase 1: the service reads nothing for 5 s while the client writes all it can.
        var rssPeak: [String: Int] = [:]
        func sampleRSS() {
            for process in [app1, db1] {
                if let rss = process.residentBytes() { rssPeak[process.label] = max(rssPeak[process.label] ?? 0, rss) }
            }
        }
        sampleRSS()
        let baseline = rssPeak
        let stallEnd = ContinuousClock.now + .seconds(5)
        var sent = 0
        while ContinuousClock.now < stallEnd {
            let base = sent
            sent += try client.writeUntil(
                deadline: min(stallEnd, ContinuousClock.now + .milliseconds(500)),
                limit: Self.total - base
            ) { pattern.bytes(from: base + $0) }
            sampleRSS()
        }
        let acceptedWhileStalled = sent
        print(
            "stalled reader: client got \(acceptedWhileStalled >> 10) KiB accepted in 5 s (reader read \(reader.bytesRead) bytes); RSS baseline \(baseline.mapValues { $0 >> 20 }) MiB, peak \(rssPeak.mapValues { $0 >> 20 }) MiB"
        )
        XCTAssertEqual(reader.bytesRead, 0, "the held reader must not have read yet")
        XCTAssertLessThan(
            acceptedWhileStalled,
            128 << 20,
            "the writer was not held back: \(acceptedWhileStalled) bytes accepted while nobody read"
        )
        XCTAssertGreaterThan(acceptedWhileStalled, 0, "nothing could be written at all")

        // Phase 2: the reader drains at full speed while the client sends the rest of the 1 GiB.
        try reader.release()
        let started = ContinuousClock.now
        let writeDeadline = started + .seconds(180)
        while sent < Self.total, ContinuousClock.now < writeDeadline {
            let base = sent
            sent += try client.writeUntil(
                deadline: min(writeDeadline, ContinuousClock.now + .milliseconds(500)),
                limit: Self.total - base
            ) { pattern.bytes(from: base + $0) }
            sampleRSS()
        }
        XCTAssertEqual(sent, Self.total, "could not send 1 GiB within 180 s")
        client.shutdownWrite()
        let received = waitBounded(reader.result, timeout: .seconds(60))
        let elapsed = ContinuousClock.now - started
        sampleRSS()
        print("1 GiB through the tunnel after release: \(elapsed.milliseconds) ms; meshd RSS peak \(rssPeak.mapValues { $0 >> 20 }) MiB")

        for (node, peak) in rssPeak {
            XCTAssertLessThan(peak, Self.rssLimit, "\(node) RSS peaked at \(peak >> 20) MiB")
        }
        guard let received else {
            XCTFail("the reader never saw EOF (read \(reader.bytesRead) bytes)\n\(mesh.allLogs())")
            return
        }
        XCTAssertTrue(received.cleanEOF, "the stream should end with a clean EOF")
        XCTAssertEqual(received.bytes, sent, "bytes received vs sent")
        XCTAssertEqual(received.sha256, pattern.sha256(ofFirst: sent), "SHA-256 of what arrived")
    }
}
