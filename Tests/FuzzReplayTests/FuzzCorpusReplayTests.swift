import Foundation
import MeshFuzzTargets
import XCTest

/// Replays every committed fuzz input (Tests/FuzzCorpus/<target>/: hand-made seeds, inputs libFuzzer
/// found interesting, and any crashers once fixed) through the same entry points the libFuzzer
/// executables call, so a regression is caught by `swift test` without the fuzzer runtime. The named
/// seeds also keep the paths they were written for, so the targets cannot quietly stop reaching them.
final class FuzzCorpusReplayTests: XCTestCase {
    static let corpus = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("FuzzCorpus")

    /// Every file of one target's corpus, by name; fails the test when there are none.
    private func inputs(_ target: String, file: StaticString = #filePath, line: UInt = #line) throws -> [String: Data] {
        let directory = Self.corpus.appendingPathComponent(target)
        let names = try FileManager.default.contentsOfDirectory(atPath: directory.path).filter { !$0.hasPrefix(".") }
        XCTAssertGreaterThan(names.count, 5, "no corpus in \(directory.path)", file: file, line: line)
        var inputs: [String: Data] = [:]
        for name in names { inputs[name] = try Data(contentsOf: directory.appendingPathComponent(name)) }
        return inputs
    }

    private func seed(_ inputs: [String: Data], _ name: String) throws -> Data {
        try XCTUnwrap(inputs[name], "seed \(name) is missing from the corpus")
    }

    func testMeshConfigCorpus() throws {
        let inputs = try self.inputs("mesh-config")
        var accepted = 0
        for (_, bytes) in inputs.sorted(by: { $0.key < $1.key }) {
            if case .accepted = bytes.withUnsafeBytes(MeshConfigFuzzTarget.run) { accepted += 1 }
        }
        XCTAssertEqual(try self.seed(inputs, "seed-design-example.json").withUnsafeBytes(MeshConfigFuzzTarget.run), .accepted)
        guard case .refused(let error) = try self.seed(inputs, "seed-bad-duration.json").withUnsafeBytes(MeshConfigFuzzTarget.run)
        else { return XCTFail("a ping_interval of \"soon\" was accepted") }
        XCTAssertEqual(error.path, "tunnel.ping_interval")
        print("mesh-config corpus: \(inputs.count) inputs replayed, \(accepted) accepted")
    }

    func testFrontDoorCorpus() throws {
        let inputs = try self.inputs("front-door")
        for (_, bytes) in inputs.sorted(by: { $0.key < $1.key }) { _ = bytes.withUnsafeBytes(FrontDoorFuzzTarget.run) }

        // The StartupMessage is routed and passed on unchanged (all but the option byte).
        let startup = try self.seed(inputs, "seed-startup")
        let routed = try XCTUnwrap(startup.withUnsafeBytes(FrontDoorFuzzTarget.run))
        XCTAssertTrue(routed.routed)
        XCTAssertEqual(routed.transcript.passedOn, startup.count - 1)
        // The same, one byte per read.
        let split = try XCTUnwrap(try self.seed(inputs, "seed-startup-byte-by-byte").withUnsafeBytes(FrontDoorFuzzTarget.run))
        XCTAssertTrue(split.routed)
        // SSLRequest without TLS: 'N', then the StartupMessage is routed.
        let declined = try XCTUnwrap(try self.seed(inputs, "seed-sslrequest-declined").withUnsafeBytes(FrontDoorFuzzTarget.run))
        XCTAssertTrue(declined.routed)
        let cancel = try XCTUnwrap(try self.seed(inputs, "seed-cancel").withUnsafeBytes(FrontDoorFuzzTarget.run))
        XCTAssertTrue(cancel.cancelled)
        // SSLRequest with TLS, then a ClientHello in the next read: 'S', then a ServerHello flight.
        let tls = try XCTUnwrap(try self.seed(inputs, "seed-sslrequest-tls").withUnsafeBytes(FrontDoorFuzzTarget.run))
        XCTAssertGreaterThan(tls.transcript.written, 100, "no ServerHello after 'S'")
        print("front-door corpus: \(inputs.count) inputs replayed")
    }

    func testTLSCorpus() throws {
        let inputs = try self.inputs("tls")
        for (_, bytes) in inputs.sorted(by: { $0.key < $1.key }) { _ = bytes.withUnsafeBytes(TLSFuzzTarget.run) }

        // A real ClientHello gets a ServerHello flight from a mesh node and from a front door.
        for name in ["seed-clienthello-mesh", "seed-clienthello-postgresql"] {
            let reply = try XCTUnwrap(try self.seed(inputs, name).withUnsafeBytes(TLSFuzzTarget.run))
            XCTAssertGreaterThan(reply.written, 100, "\(name): no ServerHello")
        }
        print("tls corpus: \(inputs.count) inputs replayed")
    }

    func testTunnelFramesCorpus() throws {
        let inputs = try self.inputs("tunnel-frames")
        for (_, bytes) in inputs.sorted(by: { $0.key < $1.key }) { _ = bytes.withUnsafeBytes(TunnelFramesFuzzTarget.run) }

        // Refusals are answered and the tunnel stays up.
        for name in ["seed-connect-forbidden", "seed-connect-unknown-service", "seed-not-connect"] {
            let refused = try XCTUnwrap(try self.seed(inputs, name).withUnsafeBytes(TunnelFramesFuzzTarget.run))
            XCTAssertFalse(refused.closedEarly, "\(name): the tunnel was closed for a refusable CONNECT")
            XCTAssertGreaterThan(refused.written, 0, "\(name): no answer")
        }
        // Floods and protocol violations end the tunnel (GOAWAY, close).
        for name in ["seed-rapid-reset", "seed-control-line-too-long", "seed-window-overflow", "seed-continuation-flood"] {
            let cut = try XCTUnwrap(try self.seed(inputs, name).withUnsafeBytes(TunnelFramesFuzzTarget.run))
            XCTAssertTrue(cut.closedEarly, "\(name): the peer's tunnel was not closed")
        }
        print("tunnel-frames corpus: \(inputs.count) inputs replayed")
    }
}
