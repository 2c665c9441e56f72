import Dispatch
import MeshSystemd
import MeshTestSupport
import NIOCore
import NIOPosix
import XCTest

/// The watchdog's event loop probe against real NIO event loops, one of them blocked.
final class LoopProbeTests: XCTestCase {
    func testAllLoopsAnswerPromptly() async throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 3)
        let probe = LoopProbe(group: group)
        XCTAssertEqual(probe.loops.count, 3)
        let started = ContinuousClock.now
        let unanswered = await probe.unanswered(within: .seconds(5))
        try await group.shutdownGracefully()
        XCTAssertEqual(unanswered, [])
        XCTAssertLessThan(ContinuousClock.now - started, .seconds(1), "healthy loops answer at once, not at the deadline")
    }

    /// A loop blocked in a task is reported by index, and the probe returns at its deadline rather
    /// than waiting for the loop.
    func testBlockedLoopIsReportedAtTheDeadline() async throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 2)
        let probe = LoopProbe(group: group)
        let release = DispatchSemaphore(value: 0)
        let blocked = DispatchSemaphore(value: 0)
        probe.loops[1].execute {
            blocked.signal()
            release.wait()
        }
        XCTAssertEqual(blocked.wait(timeout: .now() + 5), .success)
        let started = ContinuousClock.now
        let unanswered = await probe.unanswered(within: .milliseconds(300))
        let waited = ContinuousClock.now - started
        release.signal()
        try await group.shutdownGracefully()
        XCTAssertEqual(unanswered, [1])
        XCTAssertGreaterThanOrEqual(waited, .milliseconds(300))
        XCTAssertLessThan(waited, .seconds(2))
    }
}
