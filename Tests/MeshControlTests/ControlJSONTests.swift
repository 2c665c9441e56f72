import Foundation
import MeshControlModel
import XCTest

/// The wire format is a contract with scripts: snake_case keys, ISO-8601 dates, nulls written out.
final class ControlJSONTests: XCTestCase {
    func testPeerInfoUsesSnakeCaseKeysAndISODates() throws {
        let peer = PeerInfo(
            name: "db1",
            address: "127.0.1.1:7443",
            dialer: true,
            state: "down",
            since: Date(timeIntervalSince1970: 1_700_000_000),
            lastError: "connection refused"
        )
        let object = try XCTUnwrap(
            JSONSerialization.jsonObject(with: ControlJSON.encoder().encode(peer)) as? [String: Any]
        )
        XCTAssertEqual(
            Set(object.keys),
            [
                "name", "address", "dialer", "state", "since", "last_error", "rtt_seconds", "streams_active",
                "streams_total", "bytes_sent", "bytes_received", "reconnects", "certificate_not_after",
                "authenticated_at", "credentials_not_after", "reauthenticate_at", "draining_tunnels", "reauthentications",
                "reauthentication_error",
            ]
        )
        XCTAssertEqual(object["since"] as? String, "2023-11-14T22:13:20Z")
        XCTAssertTrue(object["rtt_seconds"] is NSNull)
        let back = try ControlJSON.decoder().decode(PeerInfo.self, from: ControlJSON.encoder().encode(peer))
        XCTAssertEqual(back, peer)
    }

    /// meshctl may meet an agent from before certificate rotation (during an upgrade): the keys it
    /// added are simply absent there.
    func testPeerInfoFromAnOlderAgentDecodes() throws {
        let older = """
            {"name": "db1", "address": "127.0.1.1:7443", "dialer": true, "state": "up", "since": "2023-11-14T22:13:20Z",
             "last_error": null, "rtt_seconds": 0.001, "streams_active": 0, "streams_total": 3, "bytes_sent": 1,
             "bytes_received": 2, "reconnects": 0, "certificate_not_after": null}
            """
        let peer = try ControlJSON.decoder().decode(PeerInfo.self, from: Data(older.utf8))
        XCTAssertNil(peer.drainingTunnels)
        XCTAssertNil(peer.authenticatedAt)
        XCTAssertEqual(PeersText.stateText(peer), "up")
    }
}
