import XCTest

@testable import MeshConfig

final class DurationTextTests: XCTestCase {
    func testParseTable() {
        let table: [(String, Duration?)] = [
            ("500ms", .milliseconds(500)),
            ("2s", .seconds(2)),
            ("1m", .seconds(60)),
            ("1h", .seconds(3600)),
            ("1.5s", .milliseconds(1500)),
            ("0.25s", .milliseconds(250)),
            ("1.5m", .seconds(90)),
            ("0.5h", .seconds(1800)),
            ("10us", .microseconds(10)),
            ("10µs", .microseconds(10)),
            ("7ns", .nanoseconds(7)),
            ("1.5ms", .microseconds(1500)),
            ("0s", .zero),
            ("007s", .seconds(7)),
            ("", nil),
            ("s", nil),
            ("5", nil),
            ("-1s", nil),
            ("+1s", nil),
            ("1 s", nil),
            (" 1s", nil),
            ("1s ", nil),
            ("1S", nil),
            ("1sec", nil),
            ("1d", nil),
            ("1ms2", nil),
            ("1m30s", nil),
            (".5s", nil),
            ("1.s", nil),
            ("1.2.3s", nil),
            ("1.5ns", nil),  // finer than a nanosecond
            ("0.0000000001s", nil),
            ("99999999999h", nil),  // does not fit in 64-bit nanoseconds
            ("١s", nil),  // non-ASCII digit
        ]
        for (text, expected) in table {
            XCTAssertEqual(DurationText.parse(text), expected, "parse(\"\(text)\")")
        }
    }

    func testFormatTable() {
        let table: [(Duration, String)] = [
            (.zero, "0s"),
            (.seconds(2), "2s"),
            (.seconds(60), "1m"),
            (.seconds(90), "90s"),
            (.seconds(3600), "1h"),
            (.seconds(7200), "2h"),
            (.milliseconds(500), "500ms"),
            (.milliseconds(1500), "1.5s"),
            (.milliseconds(2250), "2.25s"),
            (.milliseconds(1001), "1.001s"),
            (.microseconds(10), "10us"),
            (.microseconds(1500), "1500us"),
            (.nanoseconds(7), "7ns"),
            (.nanoseconds(1_000_000_001), "1000000001ns"),
            (.milliseconds(-500), "-500ms"),
        ]
        for (duration, expected) in table {
            XCTAssertEqual(DurationText.format(duration), expected, "format(\(duration))")
        }
    }

    func testFormatReadsBackAsTheSameDuration() {
        let samples: [Duration] = [
            .zero, .nanoseconds(1), .microseconds(3), .milliseconds(100), .milliseconds(1500), .seconds(59),
            .seconds(61), .seconds(86_400), .nanoseconds(123_456_789_012),
        ]
        for duration in samples {
            XCTAssertEqual(DurationText.parse(DurationText.format(duration)), duration, "\(duration)")
        }
    }
}
