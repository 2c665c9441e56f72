import Foundation
import MeshControl
import MeshControlModel
import MeshTestSupport
import XCTest

/// `meshctl peers`: fixed peers and clock in, exact text out (no colour), and the exact JSON.
final class PeersTextTests: XCTestCase {
    func testHumanTable() {
        let text = PeersText.render(ControlFixtures.peers, now: ControlFixtures.now, style: .plain)
        XCTAssertEqual(
            text,
            """
            NAME  ADDRESS         STATE           SINCE    RTT    STREAMS  TX       RX       LAST ERROR                                        AUTHENTICATED  AUTH EXPIRES  CERT EXPIRES
            app9  127.0.1.9:7443  handshaking     2h ago   -      0/0      0 B      0 B      TLS handshake with app9 failed: certificate ver…  -              -             -
            db1   127.0.1.1:7443  up +1 draining  3m ago   0.4ms  2/310    1.2 GiB  35 MiB   -                                                 1m ago         in 30d        in 89d
            db2   127.0.1.2:7443  down            42s ago  -      0/12     5.0 KiB  1.5 KiB  connection refused                                -              -             in 5d

            """
        )
    }

    func testAnUpPeersPastErrorIsLeftToJSON() {
        let text = PeersText.render(ControlFixtures.peers, now: ControlFixtures.now, style: .plain)
        XCTAssertEqual(ControlFixtures.peers[1].lastError, "connection reset by peer")
        XCTAssertFalse(text.contains("connection reset by peer"), text)
    }

    func testColourOnlyWrapsCellsAndKeepsColumnsAligned() {
        let plain = PeersText.render(ControlFixtures.peers, now: ControlFixtures.now, style: .plain)
        let coloured = PeersText.render(ControlFixtures.peers, now: ControlFixtures.now, style: .ansi)
        XCTAssertTrue(coloured.contains("\u{1B}[32mup +1 draining\u{1B}[0m"), "up is green")
        XCTAssertTrue(coloured.contains("\u{1B}[31mdown\u{1B}[0m"), "down is red")
        XCTAssertTrue(coloured.contains("\u{1B}[33min 5d\u{1B}[0m"), "a certificate under 14 days is yellow")
        let stripped = coloured.replacingOccurrences(of: "\u{1B}\\[[0-9]+m", with: "", options: .regularExpression)
        XCTAssertEqual(stripped, plain)
    }

    /// A tunnel that cannot be re-authenticated is closed at AUTH EXPIRES: its error shows although
    /// the peer is up, and the expiry is red.
    func testFailedReauthenticationShowsWhileUp() {
        var peer = ControlFixtures.peers[1]
        peer.reauthenticationError = "renewal failed: untrusted"
        peer.reauthenticateAt = nil
        let plain = PeersText.render([peer], now: ControlFixtures.now, style: .plain)
        XCTAssertTrue(plain.contains("renewal failed: untrusted"), plain)
        let coloured = PeersText.render([peer], now: ControlFixtures.now, style: .ansi)
        XCTAssertTrue(coloured.contains("\u{1B}[31min 30d\u{1B}[0m"), coloured)
    }

    func testNoColourWhenNotATerminalOrNO_COLOR() {
        XCTAssertEqual(TextStyle.forStandardOutput(environment: [:], isTerminal: true), .ansi)
        XCTAssertEqual(TextStyle.forStandardOutput(environment: [:], isTerminal: false), .plain)
        XCTAssertEqual(TextStyle.forStandardOutput(environment: ["NO_COLOR": "1"], isTerminal: true), .plain)
        XCTAssertEqual(TextStyle.forStandardOutput(environment: ["NO_COLOR": ""], isTerminal: true), .ansi)
    }

    func testNoPeers() {
        XCTAssertEqual(
            PeersText.render([], now: ControlFixtures.now, style: .plain),
            "no peers: this node is the only one in mesh.json\n"
        )
    }

    func testJSON() throws {
        let text = try ControlJSON.text(Array(ControlFixtures.peers.dropFirst()))
        XCTAssertEqual(
            text,
            """
            [
              {
                "address" : "127.0.1.1:7443",
                "authenticated_at" : "2026-02-25T06:12:15Z",
                "bytes_received" : 36700160,
                "bytes_sent" : 1288490189,
                "certificate_not_after" : "2026-05-25T07:13:20Z",
                "credentials_not_after" : "2026-03-27T06:14:20Z",
                "dialer" : true,
                "draining_tunnels" : 1,
                "last_error" : "connection reset by peer",
                "name" : "db1",
                "reauthenticate_at" : "2026-03-26T06:14:20Z",
                "reauthentication_error" : null,
                "reauthentications" : 2,
                "reconnects" : 1,
                "rtt_seconds" : 0.00042,
                "since" : "2026-02-25T06:10:20Z",
                "state" : "up",
                "streams_active" : 2,
                "streams_total" : 310
              },
              {
                "address" : "127.0.1.2:7443",
                "authenticated_at" : null,
                "bytes_received" : 1536,
                "bytes_sent" : 5120,
                "certificate_not_after" : "2026-03-02T06:14:20Z",
                "credentials_not_after" : "2026-03-02T06:14:20Z",
                "dialer" : false,
                "draining_tunnels" : 0,
                "last_error" : "connection refused",
                "name" : "db2",
                "reauthenticate_at" : null,
                "reauthentication_error" : null,
                "reauthentications" : 0,
                "reconnects" : 3,
                "rtt_seconds" : null,
                "since" : "2026-02-25T06:12:38Z",
                "state" : "down",
                "streams_active" : 0,
                "streams_total" : 12
              }
            ]

            """
        )
        let decoded = try ControlJSON.decoder().decode([PeerInfo].self, from: Data(text.utf8))
        XCTAssertEqual(decoded, Array(ControlFixtures.peers.dropFirst()))
    }
}
