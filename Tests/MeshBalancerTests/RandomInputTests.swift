import MeshBalancer
import MeshTestSupport
import NIOCore
import XCTest

/// Random bytes at both parsers, seeded so a failure can be replayed: nothing crashes, and the front
/// door never has to hold more than one maximal startup packet to reach a verdict.
final class RandomInputTests: XCTestCase {
    func testStartupReaderOnRandomInput() {
        var random = SplitMix64(seed: 0x5EED_F00D)
        var outcomes = [String: Int]()
        for _ in 0..<3_000 {
            let input = Self.randomFirstPacket(&random)
            var buffer = ByteBuffer()
            var offset = 0
            var finished = false
            // Feed in random chunk sizes, as a socket would; at most input.count reads.
            feeding: while offset < input.count {
                let take = min(Int.random(in: 1...512, using: &random), input.count - offset)
                buffer.writeBytes(input[offset..<(offset + take)])
                offset += take
                for _ in 0..<4 {
                    do {
                        switch try StartupPacket.read(from: &buffer) {
                        case .needMoreData:
                            XCTAssertLessThan(
                                buffer.readableBytes,
                                PostgresProtocol.maxStartupPacketLength,
                                "waiting for more with a full packet's worth buffered"
                            )
                            continue feeding
                        case .packet(let packet):
                            outcomes["\(packet)".prefix(while: { $0 != "(" }).description, default: 0] += 1
                        }
                    } catch {
                        outcomes[Self.kind(of: error), default: 0] += 1
                        finished = true
                        break feeding
                    }
                }
            }
            if !finished { outcomes["incomplete", default: 0] += 1 }
        }
        // The generator reaches every kind of verdict, so the loop above tested something.
        for kind in [
            "sslRequest", "cancelRequest", "startup", "lengthOutOfRange", "requestLength", "unsupportedProtocol",
            "malformedStartup",
        ] {
            XCTAssertGreaterThan(outcomes[kind] ?? 0, 0, "never produced \(kind): \(outcomes)")
        }
    }

    func testKeyScannerOnRandomInput() {
        var random = SplitMix64(seed: 42)
        var outcomes = [String: Int]()
        for _ in 0..<3_000 {
            var scanner = BackendKeyScanner()
            var outcome = BackendKeyScanner.Outcome.needMoreData
            for _ in 0..<Int.random(in: 1...8, using: &random) {
                var chunk = ByteBuffer()
                // Mostly plausible message headers with random bodies, sometimes pure noise.
                if Bool.random(using: &random) {
                    let type = [UInt8(ascii: "K"), UInt8(ascii: "E"), UInt8(ascii: "S"), UInt8(ascii: "Z"), 0xFF]
                        .randomElement(using: &random)!
                    chunk.writeInteger(type)
                    chunk.writeInteger(Int32.random(in: -2...300, using: &random))
                }
                chunk.writeBytes((0..<Int.random(in: 0...300, using: &random)).map { _ in UInt8.random(in: 0...255, using: &random) })
                outcome = scanner.scan(chunk)
            }
            outcomes["\(outcome)".prefix(while: { $0 != "(" }).description, default: 0] += 1
        }
        for kind in ["keyData", "readyWithoutKey", "serverError", "gaveUp", "needMoreData"] {
            XCTAssertGreaterThan(outcomes[kind] ?? 0, 0, "never produced \(kind): \(outcomes)")
        }
    }

    static func kind(of error: StartupPacketError) -> String {
        switch error {
        case .lengthOutOfRange: "lengthOutOfRange"
        case .requestLength: "requestLength"
        case .unsupportedProtocol: "unsupportedProtocol"
        case .malformedStartup: "malformedStartup"
        }
    }

    /// Half pure noise, half a valid-looking prefix (length and code) with a random tail.
    static func randomFirstPacket(_ random: inout SplitMix64) -> [UInt8] {
        let noise = (0..<Int.random(in: 0...64, using: &random)).map { _ in UInt8.random(in: 0...255, using: &random) }
        switch Int.random(in: 0..<5, using: &random) {
        case 0:
            return noise
        case 4:
            // Long: a plausible header and up to 12,000 more bytes, past the largest allowed packet.
            let fill = Array(repeating: UInt8.random(in: 0...255, using: &random), count: Int.random(in: 0...12_000, using: &random))
            return Self.bytes(Int32.random(in: 8...10_000, using: &random)) + Self.bytes(UInt32(0x0003_0000)) + noise + fill
        case 1:
            let code = [
                PostgresProtocol.sslRequestCode, PostgresProtocol.gssEncRequestCode, PostgresProtocol.cancelRequestCode,
            ].randomElement(using: &random)!
            let length = code == PostgresProtocol.cancelRequestCode ? Int32.random(in: 10...300, using: &random) : 8
            return Self.bytes(length) + Self.bytes(code) + noise + Array(repeating: 0, count: 300)
        default:
            let version = UInt32.random(in: 0...1, using: &random) == 0 ? 0x0003_0000 : UInt32.random(in: 0...0x0005_0000, using: &random)
            let parameters = Array("user\0app\0".utf8) + noise.map { $0 == 0 ? 1 : $0 } + (Bool.random(using: &random) ? [0, 0] : [0])
            let length = Bool.random(using: &random) ? Int32(8 + parameters.count) : Int32.random(in: 0...20_000, using: &random)
            return Self.bytes(length) + Self.bytes(version) + parameters + noise
        }
    }

    static func bytes<T: FixedWidthInteger>(_ value: T) -> [UInt8] {
        withUnsafeBytes(of: value.bigEndian) { Array($0) }
    }
}
