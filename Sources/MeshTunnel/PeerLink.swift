import Foundation
import Logging
import MeshConfig
import MeshTLS
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix

/// Keeps the one tunnel to one peer: dials it when this node's name sorts lower (the dialer), or
/// takes the peer's inbound tunnel otherwise; redials with backoff; publishes its state to the
/// `PeerTable`. Every mutation happens on `eventLoop`.
final class PeerLink: @unchecked Sendable {
    let peer: String
    let address: Endpoint
    let dialer: Bool
    let eventLoop: EventLoop
    let counters = PeerCounters()

    private let table: PeerTable
    private let events: TunnelEvents
    private let logger: Logger
    private let backoff: Backoff
    private let dialTunnel: @Sendable (PeerLink) -> EventLoopFuture<TunnelConnection>
    /// Loop-confined state (see `PeerLinkState` for the machine).
    private var state: PeerLinkState<TunnelConnection>
    private var wasEverUp = false
    private var retryTask: Scheduled<Void>?
    private var lastLoggedError: String?
    /// The tunnel streams are opened on; readable from any thread.
    private let current = NIOLockedValueBox<TunnelConnection?>(nil)
    /// Callers of `connection(within:)` waiting for a link that is still coming up. Loop-confined.
    private var waiters: [ObjectIdentifier: EventLoopPromise<TunnelConnection>] = [:]

    init(
        peer: String,
        address: Endpoint,
        dialer: Bool,
        eventLoop: EventLoop,
        table: PeerTable,
        events: TunnelEvents,
        backoff: Backoff,
        logger: Logger,
        dialTunnel: @escaping @Sendable (PeerLink) -> EventLoopFuture<TunnelConnection>
    ) {
        self.peer = peer
        self.address = address
        self.dialer = dialer
        self.eventLoop = eventLoop
        self.table = table
        self.events = events
        self.backoff = backoff
        self.dialTunnel = dialTunnel
        var logger = logger
        logger[metadataKey: "peer"] = "\(peer)"
        self.logger = logger
        self.state = .down(error: dialer ? "not dialed yet" : "waiting for \(peer) to dial", attempt: 0)
    }

    /// The live tunnel, if the link is up.
    var connection: TunnelConnection? { self.current.withLockedValue { $0 } }

    /// The live tunnel; or, while the link has not been up yet since this agent started (as right
    /// after a restart on held sockets), the tunnel once it is up, waiting at most `limit`. Fails
    /// at once when a tunnel that was up has gone down, also while it redials: a client must not
    /// hang on a peer that is known to be unreachable (Patroni gives a dead member's REST API 2 s
    /// in an election; a connect that hangs slows the promotion by that much).
    func connection(within limit: TimeAmount) -> EventLoopFuture<TunnelConnection> {
        self.eventLoop.flatSubmit {
            switch self.state {
            case .up(let connection):
                return self.eventLoop.makeSucceededFuture(connection)
            case .connecting, .handshaking, .down:
                guard !self.wasEverUp else { return self.eventLoop.makeFailedFuture(PeerUnavailableError(peer: self.peer)) }
            case .stopped:
                return self.eventLoop.makeFailedFuture(PeerUnavailableError(peer: self.peer))
            }
            let promise = self.eventLoop.makePromise(of: TunnelConnection.self)
            let key = ObjectIdentifier(promise.futureResult)
            self.waiters[key] = promise
            let timeout = self.eventLoop.scheduleTask(in: limit) {
                self.waiters.removeValue(forKey: key)?.fail(PeerUnavailableError(peer: self.peer))
            }
            promise.futureResult.whenComplete { _ in timeout.cancel() }
            return promise.futureResult
        }
    }

    /// Publishes the link in the peer table and, for a dialer, dials.
    func start() {
        var status = PeerStatus(name: self.peer, address: "\(self.address)", dialer: self.dialer, state: .down, since: Date())
        if case .down(let waiting, _) = self.state { status.lastError = waiting }
        self.table.register(status, counters: self.counters)
        self.eventLoop.execute {
            if self.dialer { self.dial() }
        }
    }

    /// Stops the link and closes its tunnel; completes once the tunnel's channel has closed, so
    /// the event loops can be shut down after it without stray timers.
    func stop() -> EventLoopFuture<Void> {
        self.eventLoop.flatSubmit {
            self.retryTask?.cancel()
            let connection = self.state.connection
            self.handle(.stop)
            return connection?.channel.closeFuture ?? self.eventLoop.makeSucceededVoidFuture()
        }
    }

    // MARK: Events from tunnels (any thread)

    func tunnelUp(_ connection: TunnelConnection, _ completed: TLSHandshakeCompleted) {
        self.onLoop {
            self.table.update(self.peer) {
                $0.certificateNotAfter = completed.peerCertificateNotAfter
                $0.certificateSerial = completed.peerCertificateSerial
            }
            if self.dialer {
                self.handle(.handshakeCompleted(connection))
            } else {
                self.handle(.accepted(connection))
            }
        }
    }

    func tunnelClosed(_ connection: TunnelConnection, _ error: Error?) {
        let text = error.map { "\($0)" } ?? "tunnel closed by \(self.peer)"
        self.onLoop {
            if case .handshaking(_, let current) = self.state, current === connection {
                self.events.handshakeFailed(peer: self.peer, error: error)
            }
            self.handle(.failed(connection, error: text))
        }
    }

    func measured(rtt: TimeAmount) {
        self.table.update(self.peer) { $0.rttSeconds = Double(rtt.nanoseconds) / 1e9 }
    }

    // MARK: The machine

    private func handle(_ event: PeerLinkState<TunnelConnection>.Event) {
        self.eventLoop.preconditionInEventLoop()
        let before = self.state.publicState
        let actions = self.state.apply(event, dialer: self.dialer, wasEverUp: self.wasEverUp)
        for action in actions {
            switch action {
            case .dial:
                self.dial()
            case .retry(let attempt):
                let delay = self.backoff.delay(attempt: attempt)
                self.retryTask = self.eventLoop.scheduleTask(in: delay) { self.dial() }
            case .close(let connection):
                connection.close()  // closing twice is harmless
            case .countReconnect:
                self.counters.reconnects.wrappingIncrement(ordering: .relaxed)
            case .publish:
                self.publish(changedFrom: before)
            }
        }
        switch self.state {
        case .up(let connection):
            self.wasEverUp = true
            self.settleWaiters { $0.succeed(connection) }
        case .stopped:
            self.settleWaiters { $0.fail(PeerUnavailableError(peer: self.peer)) }
        case .connecting, .handshaking, .down:
            break
        }
    }

    private func settleWaiters(_ settle: (EventLoopPromise<TunnelConnection>) -> Void) {
        let waiting = self.waiters.values
        self.waiters.removeAll()
        waiting.forEach(settle)
    }

    private func dial() {
        guard case .down = self.state else { return }
        self.handle(.dialStarted)
        self.dialTunnel(self).whenComplete { result in
            self.onLoop {
                switch result {
                case .success(let connection):
                    self.handle(.tcpConnected(connection))
                case .failure(let error):
                    self.handle(.failed(nil, error: "connect \(self.address): \(Self.describe(connectError: error))"))
                }
            }
        }
    }

    /// "connection refused" rather than NIO's nested error dump.
    private static func describe(connectError error: Error) -> String {
        if let connection = error as? NIOConnectionError, let first = connection.connectionErrors.first {
            if let io = first.error as? IOError { return String(cString: strerror(io.errnoCode)).lowercased() }
            return "\(first.error)"
        }
        if let io = error as? IOError { return String(cString: strerror(io.errnoCode)).lowercased() }
        return "\(error)"
    }

    private func publish(changedFrom before: PeerStatus.State) {
        let now = Date()
        let state = self.state
        self.current.withLockedValue { current in
            if case .up(let connection) = state { current = connection } else { current = nil }
        }
        let error: String?
        if case .down(let text, _) = state { error = text } else { error = nil }
        self.table.update(self.peer) { status in
            if status.state != state.publicState { status.since = now }
            status.state = state.publicState
            if let error { status.lastError = error }
            if state.publicState != .up { status.rttSeconds = nil }
        }
        guard before != state.publicState else { return }
        switch state {
        case .up:
            self.lastLoggedError = nil
            self.logger.info("peer \(self.peer) up", metadata: ["from": "\(before)"])
        case .down(let error, let attempt):
            // A peer that stays unreachable fails every redial the same way: say it once.
            if error == self.lastLoggedError {
                self.logger.debug("peer \(self.peer) still down: \(error)", metadata: ["attempt": "\(attempt)"])
            } else {
                self.logger.warning("peer \(self.peer) down: \(error)", metadata: ["attempt": "\(attempt)"])
            }
            self.lastLoggedError = error
        case .stopped:
            self.logger.info("peer \(self.peer) stopped")
        case .connecting, .handshaking:
            self.logger.debug("peer \(self.peer) \(state.publicState)")
        }
    }

    private func onLoop(_ body: @escaping @Sendable () -> Void) {
        if self.eventLoop.inEventLoop { body() } else { self.eventLoop.execute(body) }
    }
}
