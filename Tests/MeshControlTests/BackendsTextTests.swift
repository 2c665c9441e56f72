import Foundation
import MeshControl
import MeshControlModel
import MeshTestSupport
import XCTest

/// `meshctl backends`: the fixture's rows in, exact text out (no colour).
final class BackendsTextTests: XCTestCase {
    func testOneBalancerHasNoBalancerColumn() throws {
        let rows = try BalancerFixtures().view.backends().filter { $0.balancer == "pg" }
        XCTAssertEqual(
            BackendsText.render(rows, style: .plain),
            """
            NODE  ROLE     STATE    TIMELINE  LSN    LAG    CONNS  LAST REPORT  LAST ERROR
            db1   primary  up       2         3/148  -      3/1    0.4s ago     -
            db2   standby  up       2         3/60   250ms  0/2    0.2s ago     -
            db3   unknown  down     -         -      -      0/0    0.9s ago     connection to 127.0.0.1:5432 refused: is Postgr…
            db4   unknown  unknown  -         -      -      0/0    never        -

            """
        )
    }

    func testSeveralBalancersAreNamed() throws {
        let rows = try BalancerFixtures().view.backends()
        XCTAssertEqual(
            BackendsText.render(rows, style: .plain),
            """
            BALANCER  NODE  ROLE     STATE    TIMELINE  LSN      LAG           CONNS  LAST REPORT  LAST ERROR
            pg        db1   primary  up       2         3/148    -             3/1    0.4s ago     -
            pg        db2   standby  up       2         3/60     250ms         0/2    0.2s ago     -
            pg        db3   unknown  down     -         -        -             0/0    0.9s ago     connection to 127.0.0.1:5432 refused: is Postgr…
            pg        db4   unknown  unknown  -         -        -             0/0    never        -
            reports   db5   unknown  unknown  -         -        -             0/0    12s ago      -
            reports   db6   standby  up       1         A0/2000  42.5s paused  0/1    0.5s ago     -

            """
        )
    }

    func testColourMarksStatesAndKeepsColumnsAligned() throws {
        let rows = try BalancerFixtures().view.backends()
        let plain = BackendsText.render(rows, style: .plain)
        let coloured = BackendsText.render(rows, style: .ansi)
        XCTAssertTrue(coloured.contains("\u{1B}[32mup\u{1B}[0m"), "up is green")
        XCTAssertTrue(coloured.contains("\u{1B}[31mdown\u{1B}[0m"), "down is red")
        XCTAssertTrue(coloured.contains("\u{1B}[33munknown\u{1B}[0m"), "unknown is yellow")
        XCTAssertTrue(coloured.contains("\u{1B}[33m42.5s paused\u{1B}[0m"), "a paused standby is yellow")
        XCTAssertTrue(coloured.contains("\u{1B}[33m12s ago\u{1B}[0m"), "a stale report is yellow")
        let stripped = coloured.replacingOccurrences(of: "\u{1B}\\[[0-9]+m", with: "", options: .regularExpression)
        XCTAssertEqual(stripped, plain)
    }

    func testNoBalancer() {
        XCTAssertEqual(BackendsText.render([], style: .plain), "no backends: no balancer runs on this node\n")
    }

    func testReportAgeAndLagUnits() {
        XCTAssertEqual(HumanUnits.age(seconds: 0.04), "0.0s ago")
        XCTAssertEqual(HumanUnits.age(seconds: 0.4), "0.4s ago")
        XCTAssertEqual(HumanUnits.age(seconds: 9.94), "9.9s ago")
        XCTAssertEqual(HumanUnits.age(seconds: 42.7), "42s ago")
        XCTAssertEqual(HumanUnits.age(seconds: 190), "3m ago")
        XCTAssertEqual(HumanUnits.lag(seconds: 0), "0s")
        XCTAssertEqual(HumanUnits.lag(seconds: 0.000_4), "0.4ms")
        XCTAssertEqual(HumanUnits.lag(seconds: 0.25), "250ms")
        XCTAssertEqual(HumanUnits.lag(seconds: 3.46), "3.5s")
        XCTAssertEqual(HumanUnits.lag(seconds: 125.2), "2m 5s")
    }
}
