import Foundation
import XCTest

@testable import MeshTunnel

/// The eviction order of the handshake slots: a new connection never waits, silent connections go
/// first, and a connection that has sent bytes is evicted only when no silent one is left.
final class PendingHandshakesTests: XCTestCase {
    /// Records which connections were evicted, by the number the test gave them.
    private final class Evictions: @unchecked Sendable {
        private let lock = NSLock()
        private var numbers: [Int] = []
        var order: [Int] { self.lock.withLock { self.numbers } }
        func evict(_ number: Int) -> @Sendable () -> Void { { self.lock.withLock { self.numbers.append(number) } } }
    }

    func testBelowTheLimitNothingIsEvicted() {
        let table = PendingHandshakes(limit: 3)
        let evictions = Evictions()
        for number in 0..<3 { XCTAssertFalse(table.admit(evict: evictions.evict(number)).evicted) }
        XCTAssertEqual(table.count, 3)
        XCTAssertEqual(evictions.order, [])
    }

    func testAFullTableEvictsTheOldestSilentConnection() {
        let table = PendingHandshakes(limit: 3)
        let evictions = Evictions()
        let tickets = (0..<3).map { table.admit(evict: evictions.evict($0)).ticket }
        table.heard(tickets[0])  // the oldest has sent its ClientHello: it is not the one to go
        XCTAssertTrue(table.admit(evict: evictions.evict(3)).evicted)
        XCTAssertTrue(table.admit(evict: evictions.evict(4)).evicted)
        XCTAssertEqual(evictions.order, [1, 2], "silent ones go first, oldest first")
        XCTAssertEqual(table.count, 3)
        XCTAssertFalse(table.settle(tickets[1]), "an evicted connection's slot is already gone")
        XCTAssertTrue(table.settle(tickets[0]))
        XCTAssertEqual(table.count, 2)
    }

    func testWhenEveryConnectionHasSpokenTheOldestGoes() {
        let table = PendingHandshakes(limit: 2)
        let evictions = Evictions()
        let first = table.admit(evict: evictions.evict(0)).ticket
        let second = table.admit(evict: evictions.evict(1)).ticket
        table.heard(second)
        table.heard(first)
        _ = table.admit(evict: evictions.evict(2))
        XCTAssertEqual(evictions.order, [0])
    }

    func testAFloodOfSilentConnectionsNeverEvictsOneThatHasSpoken() {
        let table = PendingHandshakes(limit: 64)
        let evictions = Evictions()
        for number in 0..<64 { _ = table.admit(evict: evictions.evict(number)) }
        let honest = table.admit(evict: evictions.evict(-1)).ticket
        table.heard(honest)
        for number in 64..<2_064 { _ = table.admit(evict: evictions.evict(number)) }
        XCTAssertFalse(evictions.order.contains(-1), "the honest peer kept its slot through 2,000 silent connections")
        XCTAssertEqual(table.count, 64)
        XCTAssertTrue(table.settle(honest), "its handshake can still finish")
        XCTAssertFalse(table.settle(honest), "settling twice frees one slot")
    }
}
