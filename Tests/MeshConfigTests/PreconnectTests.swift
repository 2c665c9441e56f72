import XCTest

@testable import MeshConfig

/// A service's `preconnect`: how many connections to its target each serving node keeps open
/// ahead of streams. Absent means none; the value is a whole number from 0 to 16.
final class PreconnectTests: XCTestCase {
    func testAbsentIsNoneAndAWholeNumberIsKept() throws {
        let absent = try XCTUnwrap(accepted([]))
        XCTAssertEqual(absent.services["postgres"]?.preconnect, 0)
        for count in [0, 2, 16] {
            let config = try XCTUnwrap(accepted([("services.postgres.preconnect", count)]))
            XCTAssertEqual(config.services["postgres"]?.preconnect, count)
        }
    }

    func testOutOfRangeOrNotAWholeNumberIsRejectedWithThePath() {
        let range = "must be between 0 and 16 (connections kept open to the target ahead of any stream), got"
        assertRejects([("services.postgres.preconnect", -1)], with: "mesh.json: services.postgres.preconnect: \(range) -1")
        assertRejects([("services.postgres.preconnect", 17)], with: "mesh.json: services.postgres.preconnect: \(range) 17")
        assertRejects(
            [("services.postgres.preconnect", 1.5)],
            with: "mesh.json: services.postgres.preconnect: expected integer, got 1.5"
        )
        assertRejects(
            [("services.postgres.preconnect", "2")],
            with: "mesh.json: services.postgres.preconnect: expected integer, got string"
        )
    }
}
