/// The per-peer state machine: `connecting → handshaking → up`, and `down` with the
/// last error whenever a tunnel fails or closes; while up, `renewing` makes a fresh tunnel before
/// the serving one is let go (certificate rotation, README "Certificate rotation"). One transition
/// function, `PeerLinkState.apply`, so every change is visible in one place and can be tested
/// without a network (`Connection` is `TunnelConnection` in the agent and any class in tests).
enum PeerLinkState<Connection: AnyObject> {
    /// TCP connect in progress (dialer only). `attempt` counts consecutive failures so far.
    case connecting(attempt: Int)
    /// TCP is up, TLS is being negotiated.
    case handshaking(attempt: Int, connection: Connection)
    case up(Connection)
    /// Dialer only: `current` carries every stream while a fresh tunnel is dialed (`fresh` nil
    /// during its TCP connect) and handshaken with the current certificates. Make-before-break:
    /// to callers the link is up throughout. `attempt` counts renewals that failed in a row.
    case renewing(current: Connection, fresh: Connection?, attempt: Int)
    /// No tunnel. A dialer retries after a backoff; an acceptor waits for the peer to dial.
    case down(error: String, attempt: Int)
    /// Shut down or removed from the config; nothing more happens.
    case stopped

    enum Event {
        case dialStarted
        case tcpConnected(Connection)
        case handshakeCompleted(Connection)
        /// The peer dialed us and passed TLS (acceptor side).
        case accepted(Connection)
        /// A dial, a handshake or a live tunnel failed. `connection` nil: the TCP connect itself.
        case failed(Connection?, error: String)
        /// The serving tunnel must be re-authenticated (its certificates near their end, or a reload
        /// changed this node's certificate or CA bundle, or the acceptor asked). `attempt` counts
        /// the renewals that failed before this one.
        case renewalDue(attempt: Int)
        case stop
    }

    enum Action: Equatable {
        case dial
        case retry(attempt: Int)
        case close(Connection)
        case publish
        case countReconnect
        /// Dial a second tunnel to the peer next to the serving one (dialer).
        case dialFresh
        /// Ask the dialer, on the serving tunnel's control stream, to dial a fresh tunnel (acceptor).
        case askPeerToRenew(Connection)
        /// A fresh tunnel took over: the old one takes no new streams, lets its streams finish, and
        /// closes with GOAWAY.
        case drain(Connection)
        /// A failure the link survives (a renewal failed while the old tunnel still serves, or the
        /// serving tunnel died while a fresh one was on its way): say so loudly, keep it as the last error.
        case report(error: String)
        case retryRenewal(attempt: Int)
        case countRenewal

        static func == (lhs: Action, rhs: Action) -> Bool {
            switch (lhs, rhs) {
            case (.dial, .dial), (.publish, .publish), (.countReconnect, .countReconnect), (.dialFresh, .dialFresh),
                (.countRenewal, .countRenewal):
                true
            case (.retry(let a), .retry(let b)), (.retryRenewal(let a), .retryRenewal(let b)): a == b
            case (.close(let a), .close(let b)), (.askPeerToRenew(let a), .askPeerToRenew(let b)), (.drain(let a), .drain(let b)):
                a === b
            case (.report(let a), .report(let b)): a == b
            default: false
            }
        }
    }

    /// Applies `event`, returning what the link must now do. Events about a connection that is not
    /// the current one (a late close of a replaced tunnel) change nothing.
    mutating func apply(_ event: Event, dialer: Bool, wasEverUp: Bool) -> [Action] {
        switch (self, event) {
        case (.stopped, .tcpConnected(let connection)), (.stopped, .accepted(let connection)):
            return [.close(connection)]
        case (.stopped, _):
            return []

        case (_, .stop):
            let actions: [Action] = [.publish] + self.connections.map { .close($0) }
            self = .stopped
            return actions

        case (.down(_, let attempt), .dialStarted):
            self = .connecting(attempt: attempt)
            return [.publish]

        case (.connecting(let attempt), .tcpConnected(let connection)):
            self = .handshaking(attempt: attempt, connection: connection)
            return [.publish]

        case (.handshaking(_, let current), .handshakeCompleted(let connection)) where current === connection:
            self = .up(connection)
            return wasEverUp ? [.publish, .countReconnect] : [.publish]

        case (.up(let current), .accepted(let connection)) where current !== connection:
            // The dialer made a fresh tunnel (a renewal, or a redial after it gave the old one up):
            // the old one drains rather than cutting streams that may still be alive. One that
            // is really dead goes when its liveness check says so.
            self = .up(connection)
            return [.publish, .drain(current), .countRenewal]

        case (_, .accepted(let connection)):
            var actions: [Action] = [.publish]
            if let current = self.connection, current !== connection { actions.append(.close(current)) }
            self = .up(connection)
            if wasEverUp { actions.append(.countReconnect) }
            return actions

        case (.connecting(let attempt), .failed(nil, let error)):
            self = .down(error: error, attempt: attempt + 1)
            return [.publish, .retry(attempt: attempt + 1)]

        case (.handshaking(let attempt, let current), .failed(let connection?, let error)) where current === connection:
            self = .down(error: error, attempt: attempt + 1)
            return [.publish, .close(connection)] + (dialer ? [.retry(attempt: attempt + 1)] : [])

        case (.up(let current), .failed(let connection?, let error)) where current === connection:
            // A tunnel that was up redials at once (attempt 0 still waits a jittered moment).
            self = .down(error: error, attempt: 0)
            return [.publish, .close(connection)] + (dialer ? [.retry(attempt: 0)] : [])

        // MARK: Renewal

        case (.up(let current), .renewalDue(let attempt)):
            guard dialer else { return [.askPeerToRenew(current)] }
            self = .renewing(current: current, fresh: nil, attempt: attempt)
            return [.dialFresh]

        case (.renewing(let current, nil, let attempt), .tcpConnected(let connection)):
            self = .renewing(current: current, fresh: connection, attempt: attempt)
            return []

        case (.renewing(let current, let fresh?, _), .handshakeCompleted(let connection)) where fresh === connection:
            self = .up(connection)
            return [.publish, .drain(current), .countRenewal]

        case (.renewing(let current, nil, let attempt), .failed(nil, let error)):
            self = .up(current)
            return [.report(error: "renewal failed: \(error)"), .retryRenewal(attempt: attempt + 1)]

        case (.renewing(let current, let fresh?, let attempt), .failed(let connection?, let error)) where fresh === connection:
            self = .up(current)
            return [.close(fresh), .report(error: "renewal failed: \(error)"), .retryRenewal(attempt: attempt + 1)]

        case (.renewing(let current, let fresh, _), .failed(let connection?, let error)) where current === connection:
            // The serving tunnel died first: the fresh one, still on its way, becomes the redial.
            if let fresh {
                self = .handshaking(attempt: 0, connection: fresh)
            } else {
                self = .connecting(attempt: 0)
            }
            return [.publish, .close(current), .report(error: error)]

        default:
            return []
        }
    }

    /// The tunnel streams are opened on.
    var connection: Connection? {
        switch self {
        case .handshaking(_, let connection), .up(let connection), .renewing(let connection, _, _): connection
        default: nil
        }
    }

    /// Every tunnel the link holds: the serving one and a fresh one being made.
    var connections: [Connection] {
        switch self {
        case .renewing(let current, let fresh?, _): [current, fresh]
        default: self.connection.map { [$0] } ?? []
        }
    }

    var publicState: PeerStatus.State {
        switch self {
        case .connecting: .connecting
        case .handshaking: .handshaking
        case .up, .renewing: .up
        case .down, .stopped: .down
        }
    }
}
