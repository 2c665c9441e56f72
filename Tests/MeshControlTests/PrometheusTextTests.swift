import MeshTestSupport
import XCTest

/// The test parser itself: it must accept well-formed exposition text and reject what Prometheus
/// rejects, or the /metrics tests that rely on it prove nothing.
final class PrometheusTextTests: XCTestCase {
    func testAcceptsWellFormedText() throws {
        let text = try PrometheusText(
            """
            # HELP meshd_peer_up 1 while up.\\nSecond line, a backslash \\\\.
            # TYPE meshd_peer_up gauge
            meshd_peer_up{peer="db1"} 1
            meshd_peer_up{peer="we\\"ird\\\\\\n"} 0
            # a comment
            # TYPE meshd_bytes_total counter
            meshd_bytes_total{peer="db1",direction="sent",} 1.5e+09 1700000000000
            # TYPE h histogram
            h_bucket{le="+Inf"} 3
            h_sum 2.5
            h_count 3
            untyped_thing NaN

            """
        )
        XCTAssertEqual(text.families["meshd_peer_up"]?.type, "gauge")
        XCTAssertEqual(text.families["meshd_peer_up"]?.help, "1 while up.\nSecond line, a backslash \\.")
        XCTAssertEqual(text.value("meshd_peer_up", ["peer": "db1"]), 1)
        XCTAssertEqual(text.value("meshd_peer_up", ["peer": "we\"ird\\\n"]), 0)
        XCTAssertEqual(text.value("meshd_bytes_total", ["peer": "db1", "direction": "sent"]), 1.5e9)
        XCTAssertEqual(text.samples("h").count, 3)
        XCTAssertEqual(text.value("untyped_thing")?.isNaN, true)
    }

    func testRejectsMalformedText() {
        let bad: [(String, String)] = [
            ("no final newline", "a 1"),
            ("bad name", "1a 1\n"),
            ("bad label name", "a{1x=\"v\"} 1\n"),
            ("unquoted label value", "a{x=v} 1\n"),
            ("unterminated labels", "a{x=\"v\" 1\n"),
            ("bad escape", "a{x=\"\\t\"} 1\n"),
            ("duplicate label", "a{x=\"1\",x=\"2\"} 1\n"),
            ("bad value", "a 1,5\n"),
            ("no value", "a\n"),
            ("bad timestamp", "a 1 soon\n"),
            ("unknown type", "# TYPE a countr\na 1\n"),
            ("second TYPE", "# TYPE a gauge\n# TYPE a gauge\na 1\n"),
            ("TYPE after samples", "a 1\n# TYPE a gauge\n"),
            ("second HELP", "# HELP a x\n# HELP a y\na 1\n"),
            ("duplicate series", "a{x=\"1\"} 1\na{x=\"1\"} 2\n"),
            ("family split apart", "a{x=\"1\"} 1\nb 1\na{x=\"2\"} 2\n"),
            ("TYPE for an ended family", "a 1\nb 1\n# TYPE a gauge\n"),
        ]
        for (what, text) in bad {
            XCTAssertThrowsError(try PrometheusText(text), what)
        }
    }
}
