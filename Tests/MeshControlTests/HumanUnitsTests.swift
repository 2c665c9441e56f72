import Foundation
import MeshControl
import MeshControlModel
import MeshTestSupport
import XCTest

final class HumanUnitsTests: XCTestCase {
    func testBytes() {
        XCTAssertEqual(HumanUnits.bytes(0), "0 B")
        XCTAssertEqual(HumanUnits.bytes(1023), "1023 B")
        XCTAssertEqual(HumanUnits.bytes(1024), "1.0 KiB")
        XCTAssertEqual(HumanUnits.bytes(1_288_490_189), "1.2 GiB")
        XCTAssertEqual(HumanUnits.bytes(15 * 1024 * 1024), "15 MiB")
        XCTAssertEqual(HumanUnits.bytes(UInt64.max), "16 EiB")
    }

    func testRoundTrips() {
        XCTAssertEqual(HumanUnits.rtt(seconds: 0.000_061), "0.06ms")
        XCTAssertEqual(HumanUnits.rtt(seconds: 0.000_4), "0.4ms")
        XCTAssertEqual(HumanUnits.rtt(seconds: 0.012_5), "12.5ms")
        XCTAssertEqual(HumanUnits.rtt(seconds: 0.25), "250ms")
        XCTAssertEqual(HumanUnits.rtt(seconds: 1.25), "1.25s")
    }

    func testAgesSpansAndExpiries() {
        let now = ControlFixtures.now
        XCTAssertEqual(HumanUnits.ago(now, now: now), "just now")
        XCTAssertEqual(HumanUnits.ago(now.addingTimeInterval(5), now: now), "just now", "a clock a little ahead is not negative")
        XCTAssertEqual(HumanUnits.ago(now.addingTimeInterval(-190), now: now), "3m ago")
        XCTAssertEqual(HumanUnits.ago(now.addingTimeInterval(-3 * 86_400), now: now), "3d ago")
        XCTAssertEqual(HumanUnits.span(seconds: 45), "45s")
        XCTAssertEqual(HumanUnits.span(seconds: 192), "3m 12s")
        XCTAssertEqual(HumanUnits.span(seconds: 7_200), "2h")
        XCTAssertEqual(HumanUnits.span(seconds: 4 * 86_400 + 3 * 3600 + 59), "4d 3h")
        XCTAssertEqual(HumanUnits.expiry(now.addingTimeInterval(90), now: now), "in 1m")
        XCTAssertEqual(HumanUnits.expiry(now.addingTimeInterval(-86_400), now: now), "expired 1d ago")
        XCTAssertEqual(HumanUnits.date(now), "2026-02-25 06:13:20 UTC")
    }
}
