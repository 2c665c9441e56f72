/// The per-peer state machine: `connecting → handshaking → up`, and `down` with the
/// last error whenever a tunnel fails or closes. One transition function, `PeerLinkState.apply`,
/// so every change is visible in one place and can be tested without a network (`Connection` is
/// `TunnelConnection` in the agent and any class in tests).
enum PeerLinkState<Connection: AnyObject> {
    /// TCP connect in progress (dialer only). `attempt` counts consecutive failures so far.
    case connecting(attempt: Int)
    /// TCP is up, TLS is being negotiated.
    case handshaking(attempt: Int, connection: Connection)
    case up(Connection)
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
        case stop
    }

    enum Action {
        case dial
        case retry(attempt: Int)
        case close(Connection)
        case publish
        case countReconnect
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
            var actions: [Action] = [.publish]
            if let current = self.connection { actions.append(.close(current)) }
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

        case (_, .accepted(let connection)):
            // The peer dialed again: a newer tunnel replaces whatever we had (the old one may be a
            // half-dead connection the peer already gave up on).
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

        default:
            return []
        }
    }

    var connection: Connection? {
        switch self {
        case .handshaking(_, let connection), .up(let connection): connection
        default: nil
        }
    }

    var publicState: PeerStatus.State {
        switch self {
        case .connecting: .connecting
        case .handshaking: .handshaking
        case .up: .up
        case .down, .stopped: .down
        }
    }
}
