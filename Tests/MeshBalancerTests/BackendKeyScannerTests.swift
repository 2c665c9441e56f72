import MeshBalancer
import NIOCore
import XCTest

/// Finding BackendKeyData in what a server sends after the StartupMessage.
final class BackendKeyScannerTests: XCTestCase {
    /// What PostgreSQL sends on a trust login: AuthenticationOk, ParameterStatus..., 'K', 'Z'.
    static func serverGreeting(key: BackendKeyData?, notice: Bool = false) -> ByteBuffer {
        var buffer = ByteBuffer()
        Self.message("R", [0, 0, 0, 0], to: &buffer)
        for (name, value) in [("server_version", "15.8"), ("client_encoding", "UTF8"), ("TimeZone", "UTC")] {
            Self.message("S", Array(name.utf8) + [0] + Array(value.utf8) + [0], to: &buffer)
        }
        if notice { Self.message("N", Array("SNOTICE\0C00000\0Mhello\0\0".utf8), to: &buffer) }
        key?.writeMessage(to: &buffer)
        Self.message("Z", [UInt8(ascii: "I")], to: &buffer)
        return buffer
    }

    static func message(_ type: Character, _ body: [UInt8], to buffer: inout ByteBuffer) {
        buffer.writeInteger(type.asciiValue!)
        buffer.writeInteger(Int32(4 + body.count))
        buffer.writeBytes(body)
    }

    func testProtocol30Key() {
        let key = BackendKeyData(processID: 12345, secretKey: [1, 2, 3, 4])
        var scanner = BackendKeyScanner()
        XCTAssertEqual(scanner.scan(Self.serverGreeting(key: key, notice: true)), .keyData(key))
        XCTAssertEqual(scanner.scan(ByteBuffer(string: "anything after")), .keyData(key), "the outcome sticks")
    }

    func testProtocol32VariableKeys() {
        for length in [1, 32, 256] {
            let key = BackendKeyData(processID: 9, secretKey: (0..<length).map { UInt8(truncatingIfNeeded: $0) })
            var scanner = BackendKeyScanner()
            XCTAssertEqual(scanner.scan(Self.serverGreeting(key: key)), .keyData(key), "\(length)-byte key")
        }
    }

    func testKeyTooLongGivesUp() {
        var buffer = ByteBuffer()
        BackendKeyData(processID: 9, secretKey: Array(repeating: 1, count: 257)).writeMessage(to: &buffer)
        var scanner = BackendKeyScanner()
        XCTAssertEqual(scanner.scan(buffer), .gaveUp("BackendKeyData with a 261-byte body"))
    }

    func testByteByByte() {
        let key = BackendKeyData(processID: -1, secretKey: Array(repeating: 0xAB, count: 32))
        let greeting = Self.serverGreeting(key: key, notice: true)
        // The key is complete at the last byte of the 'K' message, before the trailing 'Z'.
        let keyEnds = greeting.readableBytes - 6
        var scanner = BackendKeyScanner()
        for index in 0..<keyEnds {
            let outcome = scanner.scan(greeting.getSlice(at: index, length: 1)!)
            XCTAssertEqual(outcome, index == keyEnds - 1 ? .keyData(key) : .needMoreData, "byte \(index)")
        }
    }

    func testEveryTwoWaySplit() {
        let key = BackendKeyData(processID: 77, secretKey: [9, 8, 7, 6])
        let greeting = Self.serverGreeting(key: key)
        for split in 0...greeting.readableBytes {
            var scanner = BackendKeyScanner()
            let first = scanner.scan(greeting.getSlice(at: 0, length: split)!)
            let second = scanner.scan(greeting.getSlice(at: split, length: greeting.readableBytes - split)!)
            XCTAssertEqual(second, .keyData(key), "split at \(split), first gave \(first)")
        }
    }

    func testReadyWithoutKey() {
        var scanner = BackendKeyScanner()
        XCTAssertEqual(scanner.scan(Self.serverGreeting(key: nil)), .readyWithoutKey)
    }

    func testServerErrorIsParsed() {
        var buffer = ByteBuffer()
        Self.message("R", [0, 0, 0, 10] + Array("SCRAM-SHA-256\0\0".utf8), to: &buffer)
        ErrorResponse(code: SQLState(rawValue: "28P01"), message: "password authentication failed for user \"app\"")
            .write(to: &buffer)
        var scanner = BackendKeyScanner()
        guard case .serverError(let error?) = scanner.scan(buffer) else { return XCTFail("no error") }
        XCTAssertEqual(error.code.rawValue, "28P01")
        XCTAssertEqual(error.severity, .fatal)
    }

    func testOversizedServerErrorReportedWithoutBody() {
        var buffer = ByteBuffer()
        buffer.writeInteger(UInt8(ascii: "E"))
        buffer.writeInteger(Int32(4 + BackendKeyScanner.maxErrorBodyLength + 1))
        var scanner = BackendKeyScanner()
        XCTAssertEqual(scanner.scan(buffer), .serverError(nil))
    }

    func testBadLengthGivesUp() {
        var buffer = ByteBuffer()
        Self.message("S", [], to: &buffer)  // a legal empty body
        buffer.writeInteger(UInt8(ascii: "S"))
        buffer.writeInteger(Int32(3))
        var scanner = BackendKeyScanner()
        XCTAssertEqual(scanner.scan(buffer), .gaveUp("message 'S' declares length 3, below 4"))
    }

    func testStopsAfterByteBoundWithoutBuffering() {
        // A notice that claims 2 MiB: the scanner skips its body without keeping it and gives up at the bound.
        var header = ByteBuffer()
        header.writeInteger(UInt8(ascii: "N"))
        header.writeInteger(Int32(2 << 20))
        var scanner = BackendKeyScanner()
        XCTAssertEqual(scanner.scan(header), .needMoreData)
        let chunk = ByteBuffer(repeating: 0x41, count: 64 * 1024)
        var outcome = BackendKeyScanner.Outcome.needMoreData
        var chunks = 0
        while outcome == .needMoreData, chunks < 64 {
            outcome = scanner.scan(chunk)
            chunks += 1
        }
        XCTAssertEqual(outcome, .gaveUp("no BackendKeyData within \(BackendKeyScanner.maxScannedBytes) bytes"))
        XCTAssertEqual(chunks, 16, "gives up on the chunk that crosses 1 MiB")
    }
}
