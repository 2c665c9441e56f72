import MeshConfig
import NIOCore
import NIOHPACK
import XCTest

@testable import MeshTunnel

/// The small protocol pieces of a stream: CONNECT requests, service access, control-stream lines.
final class StreamProtocolTests: XCTestCase {
    func testConnectRequestCarriesOnlyMethodAndAuthority() {
        let headers = ConnectRequest.headers(service: "postgres")
        XCTAssertEqual(headers.map(\.name).sorted(), [":authority", ":method"])
        XCTAssertEqual(try ConnectRequest.service(from: headers).get(), "postgres")
    }

    func testMalformedRequestsAreBadRequests() {
        let get: HPACKHeaders = [":method": "GET", ":authority": "postgres"]
        let noAuthority: HPACKHeaders = [":method": "CONNECT"]
        for headers in [get, noAuthority] {
            guard case .failure(let refusal) = ConnectRequest.service(from: headers) else {
                return XCTFail("accepted \(headers)")
            }
            XCTAssertEqual(refusal, .badRequest)
        }
    }

    func testServiceAccessChecksServedNodeAndAllowList() {
        let service = ServiceSettings(
            name: "postgres",
            on: ["db1": .tcp(host: "127.0.0.1", port: 5432)],
            allow: .nodes(["app1"]),
            postgres: nil
        )
        let onDB1 = ServiceAccess(node: "db1", services: ["postgres": service])
        XCTAssertEqual(try onDB1.target(service: "postgres", peer: "app1").get(), LocalTarget(.tcp(host: "127.0.0.1", port: 5432)))
        XCTAssertEqual(onDB1.target(service: "postgres", peer: "db2").failure, .forbidden)
        XCTAssertEqual(onDB1.target(service: "ssh", peer: "app1").failure, .notFound)
        let onDB2 = ServiceAccess(node: "db2", services: ["postgres": service])
        XCTAssertEqual(onDB2.target(service: "postgres", peer: "app1").failure, .notFound)
    }

    func testReservedNamesCannotBeServiceNames() {
        // Service names follow the node-name rule, which has no '.', so these never collide.
        XCTAssertTrue(ReverseStreams.controlAuthority.contains("."))
        XCTAssertTrue(ReverseStreams.reverseAuthority.contains("."))
    }

    func testLineBufferSplitsAcrossChunksAndBoundsLength() {
        var lines = LineBuffer()
        XCTAssertEqual(lines.append(ByteBuffer(string: "open 1 post")), [])
        XCTAssertEqual(lines.append(ByteBuffer(string: "gres\nrefuse 2 403\nop")), ["open 1 postgres", "refuse 2 403"])
        XCTAssertEqual(lines.append(ByteBuffer(string: "en 3 x\n")), ["open 3 x"])
        XCTAssertNil(lines.append(ByteBuffer(string: String(repeating: "a", count: ReverseStreams.maxLine + 1))))
    }
}

extension Result {
    fileprivate var failure: Failure? {
        if case .failure(let error) = self { return error }
        return nil
    }
}
