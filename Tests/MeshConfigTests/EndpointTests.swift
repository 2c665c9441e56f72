import XCTest

@testable import MeshConfig

final class EndpointTests: XCTestCase {
    func testParseTable() {
        let table: [(String, Endpoint?)] = [
            ("127.0.0.1:7443", .tcp(host: "127.0.0.1", port: 7443)),
            ("[::1]:7443", .tcp(host: "::1", port: 7443)),
            ("[fe80::1%eth0]:80", .tcp(host: "fe80::1%eth0", port: 80)),
            ("localhost:80", .tcp(host: "localhost", port: 80)),
            ("db-1.internal_zone:1", .tcp(host: "db-1.internal_zone", port: 1)),
            ("127.0.0.1:65535", .tcp(host: "127.0.0.1", port: 65535)),
            ("unix:/run/pg.sock", .unix(path: "/run/pg.sock")),
            ("unix:run/pg.sock", .unix(path: "/etc/mesh/run/pg.sock")),
            ("unix:../pg.sock", .unix(path: "/etc/pg.sock")),
            ("127.0.0.1:0", nil),
            ("127.0.0.1:65536", nil),
            ("127.0.0.1:99999999999", nil),
            ("127.0.0.1:-1", nil),
            ("127.0.0.1:+80", nil),
            ("127.0.0.1:", nil),
            (":80", nil),
            ("localhost", nil),
            ("db1", nil),
            ("::1:7443", nil),
            ("[::1]7443", nil),
            ("[::1]", nil),
            ("[]:80", nil),
            ("[127.0.0.1]:80", nil),
            ("[::1]:", nil),
            ("host name:80", nil),
            ("tcp://127.0.0.1:80", nil),
            ("unix:", nil),
            ("", nil),
        ]
        for (text, expected) in table {
            XCTAssertEqual(Endpoint.parse(text, relativeTo: "/etc/mesh"), expected, "parse(\"\(text)\")")
        }
    }

    func testRelativeUnixPathIsKeptWithoutADirectory() {
        XCTAssertEqual(Endpoint.parse("unix:run/pg.sock", relativeTo: nil), .unix(path: "run/pg.sock"))
    }

    func testDescriptionIsTheWrittenForm() {
        for text in ["127.0.0.1:7443", "[::1]:7443", "localhost:80", "unix:/run/pg.sock"] {
            XCTAssertEqual(Endpoint.parse(text, relativeTo: nil)?.description, text)
        }
    }

    func testCollisions() {
        let specific = Endpoint.tcp(host: "127.0.0.1", port: 80)
        XCTAssertTrue(specific.collides(with: .tcp(host: "127.0.0.1", port: 80)))
        XCTAssertTrue(specific.collides(with: .tcp(host: "0.0.0.0", port: 80)))
        XCTAssertTrue(Endpoint.tcp(host: "::", port: 80).collides(with: specific))
        XCTAssertFalse(specific.collides(with: .tcp(host: "127.0.0.2", port: 80)))
        XCTAssertFalse(specific.collides(with: .tcp(host: "127.0.0.1", port: 81)))
        XCTAssertFalse(specific.collides(with: .unix(path: "/tmp/80")))
        XCTAssertTrue(Endpoint.unix(path: "/a").collides(with: .unix(path: "/a")))
    }
}
