import Foundation
import Logging
import MeshConfig
import MeshTLS
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix

/// Keeps the one tunnel to one peer: dials it when this node's name sorts lower (the dialer), or
/// takes the peer's inbound tunnel otherwise; redials with backoff; publishes its state to the
/// `PeerTable`. Re-authenticates the tunnel before what authenticated it runs out (README,
/// "Certificate rotation"): a fresh tunnel takes over and the old one drains. Every mutation
/// happens on `eventLoop`.
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
    /// `tunnel.reauthenticate_before`.
    private let reauthenticateBefore: Duration
    /// This node's certificate and CA bundle as the running config has them (they change on reload).
    private let localCredentials: @Sendable () -> LocalCredentials
    /// Loop-confined state (see `PeerLinkState` for the machine).
    private var state: PeerLinkState<TunnelConnection>
    /// The next renewal of the serving tunnel (by expiry, a retry, or an acceptor's repeated ask).
    private var renewTask: Scheduled<Void>?
    /// The tunnel `renewTask` and the deadline were set up for.
    private var armedFor: ObjectIdentifier?
    /// Older tunnels finishing their streams after a fresh one took over. Loop-confined.
    private var draining: [ObjectIdentifier: TunnelConnection] = [:]
    /// The last re-authentication problem logged as a warning; the same one again goes to debug.
    private var lastReported: String?
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
        reauthenticateBefore: Duration,
        localCredentials: @escaping @Sendable () -> LocalCredentials,
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
        self.reauthenticateBefore = reauthenticateBefore
        self.localCredentials = localCredentials
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
    /// in an election; a connect that hangs slows the promotion by that much). A renewal opens no
    /// such window: the serving tunnel answers until the fresh one has taken over.
    func connection(within limit: TimeAmount) -> EventLoopFuture<TunnelConnection> {
        self.eventLoop.flatSubmit {
            switch self.state {
            case .up(let connection), .renewing(let connection, _, _):
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
            self.renewTask?.cancel()
            let connections = self.state.connections + self.draining.values
            self.handle(.stop)
            for old in self.draining.values { old.close() }
            return .andAllComplete(connections.map(\.channel.closeFuture), on: self.eventLoop)
        }
    }

    /// Every tunnel to the peer: the serving one and those still draining. Call on `eventLoop`.
    var tunnels: [TunnelConnection] {
        self.eventLoop.preconditionInEventLoop()
        return (self.state.connection.map { [$0] } ?? []) + self.draining.values
    }

    // MARK: Re-authentication (certificate rotation)

    /// A reload changed what this node authenticates with (`local`): a tunnel authenticated with
    /// another certificate or CA bundle is renewed now; one whose peer was verified through a CA
    /// the new bundle lacks gets `drainLimit` to be replaced, and is closed then, so no tunnel
    /// outlives a CA taken out of `tls.ca` by more than that.
    func reauthenticate(with local: LocalCredentials, reloadedAt: Date, drainLimit: Duration) {
        self.onLoop {
            for tunnel in self.tunnels {
                guard let credentials = tunnel.credentials, !credentials.isTrusted(by: local.authorities) else { continue }
                let message =
                    "the CA that verified \(self.peer)'s certificate is no longer in tls.ca: its tunnel is renewed now and closed "
                    + "within \(TimeAmount(drainLimit).text) (tunnel.shutdown_grace) if no fresh one takes over"
                self.logger.warning("\(message)")
                tunnel.close(
                    at: reloadedAt.addingTimeInterval(drainLimit.timeInterval),
                    because: ReauthenticationDeadlineError(peer: self.peer, reason: .authorityRemoved(reloadedAt: reloadedAt))
                )
            }
            guard let credentials = self.state.connection?.credentials, credentials.isStale(comparedWith: local) else { return }
            self.logger.info("renewing the tunnel to \(self.peer): this node's certificate or CA bundle changed")
            self.handle(.renewalDue(attempt: 0))
        }
    }

    /// The acceptor asked for a fresh tunnel (its certificate, CA bundle or view of the expiry).
    func renewalRequested() {
        self.onLoop {
            guard self.dialer, case .up = self.state else { return }
            self.logger.info("\(self.peer) asked for a fresh tunnel; renewing")
            self.handle(.renewalDue(attempt: 0))
        }
    }

    /// Closes every tunnel to the peer that was authenticated with a certificate whose serial is in
    /// `serials` (a reload's CRL); names the closed ones' serials.
    func closeRevoked(_ serials: Set<String>) -> EventLoopFuture<[String]> {
        self.eventLoop.submit {
            var closed: [String] = []
            for tunnel in self.tunnels {
                guard let serial = tunnel.credentials?.peerSerial, serials.contains(serial) else { continue }
                tunnel.close()
                closed.append(serial)
            }
            return closed
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
            if self.draining.removeValue(forKey: ObjectIdentifier(connection)) != nil {
                if let error {
                    self.logger.warning("previous tunnel to \(self.peer) closed while draining: \(error)")
                } else {
                    self.logger.info("previous tunnel to \(self.peer) closed after draining")
                }
                self.publishDraining()
                return
            }
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
            case .dialFresh:
                self.connect()
            case .askPeerToRenew(let connection):
                connection.send(PeerNote.renewTunnel)
                // The note may be lost (a control stream not open yet): ask again until a fresh
                // tunnel arrives.
                self.scheduleRenewal(in: self.backoff.max, attempt: 0)
            case .drain(let old):
                old.drain()
                self.draining[ObjectIdentifier(old)] = old
                self.logger.info(
                    "peer \(self.peer) re-authenticated: a fresh tunnel took over; the previous one finishes its streams and closes"
                )
                self.publishDraining()
            case .report(let error):
                self.report(error)
                let serving = self.state.publicState == .up
                self.table.update(self.peer) { status in
                    status.lastError = error
                    if serving { status.reauthenticationError = error }
                }
            case .retryRenewal(let attempt):
                self.scheduleRenewal(in: self.backoff.delay(attempt: attempt), attempt: attempt)
            case .countRenewal:
                self.counters.reauthentications.wrappingIncrement(ordering: .relaxed)
            }
        }
        switch self.state {
        case .up(let connection):
            self.wasEverUp = true
            self.settleWaiters { $0.succeed(connection) }
            self.arm(connection)
        case .stopped:
            self.settleWaiters { $0.fail(PeerUnavailableError(peer: self.peer)) }
        case .connecting, .handshaking, .down, .renewing:
            break
        }
    }

    /// A tunnel became the serving one: set its hard end (the earliest notAfter of what
    /// authenticated it) and when it is renewed ahead of that.
    private func arm(_ connection: TunnelConnection) {
        guard self.armedFor != ObjectIdentifier(connection), let credentials = connection.credentials else { return }
        self.armedFor = ObjectIdentifier(connection)
        self.renewTask?.cancel()
        self.renewTask = nil
        connection.close(
            at: credentials.notAfter,
            because: ReauthenticationDeadlineError(peer: self.peer, reason: .certificateExpired(notAfter: credentials.notAfter))
        )
        let renewal = credentials.renewalTime(before: self.reauthenticateBefore)
        let renews = credentials.renewsByExpiry(before: self.reauthenticateBefore)
        self.lastReported = nil
        self.table.update(self.peer) { status in
            status.authenticatedAt = credentials.authenticatedAt
            status.credentialsNotAfter = credentials.notAfter
            status.reauthenticateAt = renews ? renewal : nil
            status.reauthenticationError = nil
        }
        if credentials.isStale(comparedWith: self.localCredentials()) {
            // A reload came between this tunnel's dial and its handshake.
            self.scheduleRenewal(in: .zero, attempt: 0)
        } else if renews {
            // The dialer renews; the acceptor asks only if no fresh tunnel came two redial
            // backoffs later, so normally one side acts and the other is its backstop.
            let slack = self.dialer ? 0 : 2 * self.backoff.max.duration.timeInterval
            self.scheduleRenewal(in: .until(renewal.addingTimeInterval(slack)), attempt: 0)
        } else {
            let error =
                "the tunnel was authenticated with certificates that expire at \(ISO8601DateFormatter().string(from: credentials.notAfter)), "
                + "within tunnel.reauthenticate_before: neither side has a newer one, so it closes then unless "
                + "\(self.peer) or this node is given a new certificate and reloaded"
            self.report(error)
            self.table.update(self.peer) { status in
                status.lastError = error
                status.reauthenticationError = error
            }
        }
    }

    /// Logs a re-authentication problem: a warning the first time, debug while it repeats (a
    /// renewal retried every `backoff_max` fails the same way until someone fixes the certificates).
    private func report(_ error: String) {
        if error == self.lastReported {
            self.logger.debug("peer \(self.peer): \(error)")
        } else {
            self.logger.warning("peer \(self.peer): \(error)")
        }
        self.lastReported = error
    }

    /// Whether the serving tunnel still needs what the acceptor asks for: it was authenticated
    /// with another certificate or CA bundle than this node holds now, or its renewal time passed.
    private func needsRenewal(_ connection: TunnelConnection) -> Bool {
        guard let credentials = connection.credentials else { return false }
        return credentials.isStale(comparedWith: self.localCredentials())
            || (credentials.renewsByExpiry(before: self.reauthenticateBefore)
                && credentials.renewalTime(before: self.reauthenticateBefore) <= Date())
    }

    /// Fires `.renewalDue` after `delay` if the same tunnel still serves then.
    private func scheduleRenewal(in delay: TimeAmount, attempt: Int) {
        self.renewTask?.cancel()
        let serving = self.state.connection.map(ObjectIdentifier.init)
        self.renewTask = self.eventLoop.scheduleTask(in: delay) {
            guard let serving, let connection = self.state.connection, ObjectIdentifier(connection) == serving else { return }
            // The dialer retries whatever the reason (it may have been the acceptor's); the
            // acceptor asks again only while the reason it asked for lasts.
            guard self.dialer || self.needsRenewal(connection) else { return }
            self.handle(.renewalDue(attempt: attempt))
        }
    }

    private func publishDraining() {
        let count = self.draining.count
        self.table.update(self.peer) { $0.drainingTunnels = count }
    }

    private func settleWaiters(_ settle: (EventLoopPromise<TunnelConnection>) -> Void) {
        let waiting = self.waiters.values
        self.waiters.removeAll()
        waiting.forEach(settle)
    }

    private func dial() {
        guard case .down = self.state else { return }
        self.handle(.dialStarted)
        self.connect()
    }

    /// Dials a tunnel and feeds the outcome to the machine: the first one, a redial, or a fresh one
    /// next to the serving tunnel.
    private func connect() {
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
            current = state.publicState == .up ? state.connection : nil
        }
        let error: String?
        if case .down(let text, _) = state { error = text } else { error = nil }
        self.table.update(self.peer) { status in
            if status.state != state.publicState { status.since = now }
            status.state = state.publicState
            if let error { status.lastError = error }
            if state.publicState != .up {
                status.rttSeconds = nil
                status.authenticatedAt = nil
                status.reauthenticateAt = nil
                status.reauthenticationError = nil
            }
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
        case .connecting, .handshaking, .renewing:
            self.logger.debug("peer \(self.peer) \(state.publicState)")
        }
    }

    private func onLoop(_ body: @escaping @Sendable () -> Void) {
        if self.eventLoop.inEventLoop { body() } else { self.eventLoop.execute(body) }
    }
}
