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
            case .dialFresh: "dialFresh"
            case .askPeerToRenew: "askPeerToRenew"
            case .drain: "drain"
            case .report: "report"
            case .retryRenewal(let attempt): "retryRenewal(\(attempt))"
            case .countRenewal: "countRenewal"
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

    /// A second inbound tunnel while one is up is the dialer's renewal (or its redial after giving
    /// the old one up): the old one drains instead of being cut.
    func testNewInboundTunnelTakesOverAndTheOldOneDrains() {
        let old = Conn()
        let new = Conn()
        var state = State.up(old)
        let actions = state.apply(.accepted(new), dialer: false, wasEverUp: true)
        XCTAssertEqual(actions, [.publish, .drain(old), .countRenewal])
        XCTAssertTrue(state.connection === new)
        XCTAssertEqual(state.publicState, .up)
    }

    func testInboundTunnelAfterDownReplacesNothingAndCountsAReconnect() {
        let new = Conn()
        var state = State.down(error: "closed", attempt: 0)
        XCTAssertEqual(state.apply(.accepted(new), dialer: false, wasEverUp: true), [.publish, .countReconnect])
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

    // MARK: Renewal (certificate rotation)

    /// Make-before-break on the dialer: the serving tunnel stays the connection, and the link stays
    /// `up`, through the fresh tunnel's connect and handshake; then the fresh one serves and the old
    /// one drains.
    func testDialerRenewsMakeBeforeBreak() {
        let old = Conn()
        let fresh = Conn()
        var state = State.up(old)
        XCTAssertEqual(state.apply(.renewalDue(attempt: 0), dialer: true, wasEverUp: true), [.dialFresh])
        XCTAssertTrue(state.connection === old)
        XCTAssertEqual(state.publicState, .up)
        XCTAssertEqual(state.apply(.tcpConnected(fresh), dialer: true, wasEverUp: true), [])
        XCTAssertTrue(state.connection === old)
        XCTAssertEqual(state.publicState, .up)
        XCTAssertEqual(state.connections.count, 2)
        XCTAssertEqual(state.apply(.handshakeCompleted(fresh), dialer: true, wasEverUp: true), [.publish, .drain(old), .countRenewal])
        XCTAssertTrue(state.connection === fresh)
        guard case .up = state else { return XCTFail("expected up, got \(state)") }
    }

    func testAcceptorAsksTheDialerInsteadOfDialing() {
        let current = Conn()
        var state = State.up(current)
        XCTAssertEqual(state.apply(.renewalDue(attempt: 3), dialer: false, wasEverUp: true), [.askPeerToRenew(current)])
        guard case .up(let still) = state, still === current else { return XCTFail("expected up, got \(state)") }
    }

    func testRenewalIsDueOnlyWhileUp() {
        for var state in [
            State.down(error: "x", attempt: 1), .connecting(attempt: 0), .handshaking(attempt: 0, connection: Conn()), .stopped,
        ] {
            let before = state.publicState
            XCTAssertEqual(state.apply(.renewalDue(attempt: 0), dialer: true, wasEverUp: true), [])
            XCTAssertEqual(state.publicState, before)
        }
        // A second request while renewing changes nothing: one fresh tunnel at a time.
        let old = Conn()
        var renewing = State.renewing(current: old, fresh: nil, attempt: 0)
        XCTAssertEqual(renewing.apply(.renewalDue(attempt: 0), dialer: true, wasEverUp: true), [])
        XCTAssertTrue(renewing.connection === old)
    }

    func testFailedFreshConnectKeepsTheServingTunnelAndRetriesWithBackoff() {
        let old = Conn()
        var state = State.renewing(current: old, fresh: nil, attempt: 2)
        XCTAssertEqual(
            state.apply(.failed(nil, error: "connection refused"), dialer: true, wasEverUp: true),
            [.report(error: "renewal failed: connection refused"), .retryRenewal(attempt: 3)]
        )
        guard case .up(let still) = state, still === old else { return XCTFail("expected up, got \(state)") }
    }

    func testFailedFreshHandshakeClosesItKeepsTheServingTunnelAndRetries() {
        let old = Conn()
        let fresh = Conn()
        var state = State.renewing(current: old, fresh: fresh, attempt: 0)
        XCTAssertEqual(
            state.apply(.failed(fresh, error: "untrusted"), dialer: true, wasEverUp: true),
            [.close(fresh), .report(error: "renewal failed: untrusted"), .retryRenewal(attempt: 1)]
        )
        guard case .up(let still) = state, still === old else { return XCTFail("expected up, got \(state)") }
    }

    /// The serving tunnel dies while the fresh one is on its way: the fresh one becomes the redial,
    /// from wherever it got to, and the link is no longer up.
    func testServingTunnelDyingWhileRenewingHandsOverToTheFreshDial() {
        let old = Conn()
        let fresh = Conn()
        var handshaking = State.renewing(current: old, fresh: fresh, attempt: 0)
        XCTAssertEqual(
            handshaking.apply(.failed(old, error: "no PING reply"), dialer: true, wasEverUp: true),
            [.publish, .close(old), .report(error: "no PING reply")]
        )
        guard case .handshaking(0, let connection) = handshaking, connection === fresh else {
            return XCTFail("expected handshaking with the fresh tunnel, got \(handshaking)")
        }
        XCTAssertEqual(handshaking.apply(.handshakeCompleted(fresh), dialer: true, wasEverUp: true), [.publish, .countReconnect])

        var connecting = State.renewing(current: old, fresh: nil, attempt: 0)
        XCTAssertEqual(
            connecting.apply(.failed(old, error: "closed"), dialer: true, wasEverUp: true),
            [.publish, .close(old), .report(error: "closed")]
        )
        guard case .connecting(0) = connecting else { return XCTFail("expected connecting, got \(connecting)") }
        XCTAssertEqual(connecting.apply(.tcpConnected(fresh), dialer: true, wasEverUp: true), [.publish])
        XCTAssertEqual(connecting.publicState, .handshaking)
    }

    func testStopWhileRenewingClosesBothTunnels() {
        let old = Conn()
        let fresh = Conn()
        var state = State.renewing(current: old, fresh: fresh, attempt: 0)
        XCTAssertEqual(state.apply(.stop, dialer: true, wasEverUp: true), [.publish, .close(old), .close(fresh)])
        guard case .stopped = state else { return XCTFail("expected stopped, got \(state)") }
    }

    /// Events about a tunnel that is neither serving nor the fresh one (a drained one closing late,
    /// a stale dial result) change nothing.
    func testEventsAboutOtherTunnelsWhileRenewingChangeNothing() {
        let old = Conn()
        let fresh = Conn()
        let stranger = Conn()
        var state = State.renewing(current: old, fresh: fresh, attempt: 0)
        XCTAssertEqual(state.apply(.failed(stranger, error: "late"), dialer: true, wasEverUp: true), [])
        XCTAssertEqual(state.apply(.handshakeCompleted(stranger), dialer: true, wasEverUp: true), [])
        XCTAssertEqual(state.apply(.tcpConnected(stranger), dialer: true, wasEverUp: true), [])
        guard case .renewing(let current, let pending?, 0) = state, current === old, pending === fresh else {
            return XCTFail("expected the same renewal, got \(state)")
        }
    }
}
