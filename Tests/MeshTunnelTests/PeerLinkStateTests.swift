import XCTest

@testable import MeshTunnel

/// The per-peer state machine, driven event by event without a network.
final class PeerLinkStateTests: XCTestCase {
    final class Conn {}
    typealias State = PeerLinkState<Conn>

    private func names(_ actions: [State.Action]) -> [String] {
        actions.map { action in
            switch action {
            case .dial: "dial"
            case .retry(let attempt): "retry(\(attempt))"
            case .close: "close"
            case .publish: "publish"
            case .countReconnect: "countReconnect"
            }
        }
    }

    func testDialerGoesUpThroughConnectingAndHandshaking() {
        var state = State.down(error: "not dialed yet", attempt: 0)
        let conn = Conn()
        XCTAssertEqual(names(state.apply(.dialStarted, dialer: true, wasEverUp: false)), ["publish"])
        XCTAssertEqual(state.publicState, .connecting)
        XCTAssertEqual(names(state.apply(.tcpConnected(conn), dialer: true, wasEverUp: false)), ["publish"])
        XCTAssertEqual(state.publicState, .handshaking)
        XCTAssertEqual(names(state.apply(.handshakeCompleted(conn), dialer: true, wasEverUp: false)), ["publish"])
        XCTAssertEqual(state.publicState, .up)
        XCTAssertTrue(state.connection === conn)
    }

    func testConnectFailureBacksOffWithGrowingAttempt() {
        var state = State.down(error: "x", attempt: 2)
        _ = state.apply(.dialStarted, dialer: true, wasEverUp: false)
        XCTAssertEqual(names(state.apply(.failed(nil, error: "refused"), dialer: true, wasEverUp: false)), ["publish", "retry(3)"])
        guard case .down(let error, let attempt) = state else { return XCTFail("expected down, got \(state)") }
        XCTAssertEqual(error, "refused")
        XCTAssertEqual(attempt, 3)
    }

    func testLiveTunnelFailureRedialsFromAttemptZeroAndCountsReconnectOnNextUp() {
        let first = Conn()
        var state = State.up(first)
        XCTAssertEqual(
            names(state.apply(.failed(first, error: "no PING reply"), dialer: true, wasEverUp: true)),
            ["publish", "close", "retry(0)"]
        )
        XCTAssertEqual(state.publicState, .down)
        let second = Conn()
        _ = state.apply(.dialStarted, dialer: true, wasEverUp: true)
        _ = state.apply(.tcpConnected(second), dialer: true, wasEverUp: true)
        XCTAssertEqual(names(state.apply(.handshakeCompleted(second), dialer: true, wasEverUp: true)), ["publish", "countReconnect"])
    }

    func testAcceptorWaitsInsteadOfRetrying() {
        let conn = Conn()
        var state = State.down(error: "waiting for a to dial", attempt: 0)
        XCTAssertEqual(names(state.apply(.accepted(conn), dialer: false, wasEverUp: false)), ["publish"])
        XCTAssertEqual(names(state.apply(.failed(conn, error: "closed"), dialer: false, wasEverUp: true)), ["publish", "close"])
        XCTAssertEqual(state.publicState, .down)
    }

    func testNewInboundTunnelReplacesTheOldOne() {
        let old = Conn()
        let new = Conn()
        var state = State.up(old)
        let actions = state.apply(.accepted(new), dialer: false, wasEverUp: true)
        XCTAssertEqual(names(actions), ["publish", "close", "countReconnect"])
        if case .close(let closed) = actions[1] { XCTAssertTrue(closed === old) }
        XCTAssertTrue(state.connection === new)
    }

    func testLateCloseOfAReplacedTunnelChangesNothing() {
        let old = Conn()
        let new = Conn()
        var state = State.up(new)
        XCTAssertEqual(names(state.apply(.failed(old, error: "late"), dialer: false, wasEverUp: true)), [])
        XCTAssertTrue(state.connection === new)
    }

    func testStopClosesTheTunnelAndIgnoresEverythingAfter() {
        let conn = Conn()
        var state = State.up(conn)
        XCTAssertEqual(names(state.apply(.stop, dialer: true, wasEverUp: true)), ["publish", "close"])
        XCTAssertEqual(names(state.apply(.dialStarted, dialer: true, wasEverUp: true)), [])
        let late = Conn()
        XCTAssertEqual(names(state.apply(.accepted(late), dialer: false, wasEverUp: true)), ["close"])
    }
}
