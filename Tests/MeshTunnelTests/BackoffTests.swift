import NIOCore
import XCTest

@testable import MeshTunnel

final class BackoffTests: XCTestCase {
    func testDelaysStayWithinTheExponentialCeilingAndTheMaximum() {
        let backoff = Backoff(base: .milliseconds(100), max: .seconds(2))
        for attempt in 0..<40 {
            let ceiling = min(Int64(2_000_000_000), Int64(100_000_000) << min(attempt, 30))
            for _ in 0..<50 {
                let delay = backoff.delay(attempt: attempt).nanoseconds
                XCTAssertGreaterThanOrEqual(delay, 0)
                XCTAssertLessThanOrEqual(delay, ceiling, "attempt \(attempt)")
            }
        }
    }

    func testFullJitterSpreadsRetries() {
        let backoff = Backoff(base: .milliseconds(100), max: .seconds(2))
        let delays = Set((0..<100).map { _ in backoff.delay(attempt: 5).nanoseconds })
        XCTAssertGreaterThan(delays.count, 50, "full jitter should rarely repeat a delay")
    }
}
