import Logging
import MeshTunnel
import NIOCore

/// One client connection on a balancer listener, from accept to close. It answers its front door
/// (`FrontDoorSession`: route, join, cancel) and owns everything the connection holds in this
/// agent: the route and the connection-count lease behind it, the stream to the chosen node, the
/// cancel key, and on `rw` its place among the sessions a demotion cuts. All of it is released in
/// one place, when the client connection closes.
///
/// Lives on its channel's event loop; only `cut()` (a demotion, from any thread) reaches it from
/// elsewhere, and it touches nothing but the channel.
final class BalancerSession: FrontDoorSession, @unchecked Sendable {
    private enum State {
        /// The front door is still reading the client's first packets.
        case accepted
        /// Counted against `lease.node` and joined to `route.service` there.
        case routed(FrontDoorHandler.Route, lease: ConnectionCounts.Lease)
        /// The connection closed and everything it held was released.
        case ended
    }

    let balancer: String
    let listener: ListenerKind
    let channel: Channel
    private let host: BalancerHost
    private let logger: Logger
    private var state: State = .accepted

    init(balancer: String, listener: ListenerKind, channel: Channel, host: BalancerHost, logger: Logger) {
        self.balancer = balancer
        self.listener = listener
        self.channel = channel
        self.host = host
        self.logger = logger
        // The one cleanup. Runs on the channel's loop, like every other method here.
        channel.closeFuture.whenComplete { _ in self.end() }
    }

    /// Identifies this session in the agent-wide tables (cancel routes, write sessions).
    var id: ObjectIdentifier { ObjectIdentifier(self) }

    func start(_ message: StartupMessage) -> Result<FrontDoorHandler.Route, ErrorResponse> {
        self.channel.eventLoop.preconditionInEventLoop()
        guard case .accepted = self.state else {
            return .failure(ErrorResponse(code: .protocolViolation, message: "tunnelmesh: this session was already routed"))
        }
        let lease: ConnectionCounts.Lease
        let service: String
        switch self.host.route(balancer: self.balancer, listener: self.listener) {
        case .failure(let refusal):
            return .failure(refusal)
        case .success(let chosen):
            (lease, service) = (chosen.lease, chosen.service)
        }
        let route = (service: service, node: lease.node)
        self.state = .routed(route, lease: lease)
        do {
            // Before the stream's socket handler, so it sees the server's bytes on their way out.
            try self.channel.pipeline.syncOperations.addHandler(self.host.cancelRoutes.watcher(session: self.id, route: route))
            try self.host.node.bridge(self.channel, toService: route.service, on: route.node) { _, result in
                self.opened(result, route: route)
            }
        } catch {
            self.count(.failed, node: route.node)
            return .failure(Self.unreachable(route, error))
        }
        if self.listener == .rw { self.host.writeSessions.add(self, node: route.node) }
        return .success(route)
    }

    func cancel(_ key: BackendKeyData) {
        self.host.cancel(key)
    }

    /// Resets the client connection: its node stopped being the primary. A reset, not a FIN: the
    /// client must see its session cut, not ended. Safe from any thread.
    func cut() {
        TCPReset.reset(self.channel)
    }

    /// Whether the stream to the chosen node opened; a failure is answered in PostgreSQL's terms.
    private func opened(_ result: Result<Void, Error>, route: FrontDoorHandler.Route) {
        guard self.channel.eventLoop.inEventLoop else {
            return self.channel.eventLoop.execute { self.opened(result, route: route) }
        }
        switch result {
        case .success:
            self.count(.routed, node: route.node)
        case .failure(let error):
            self.count(.failed, node: route.node)
            let channel = self.channel
            let response = Self.unreachable(route, error)
            channel.writeAndFlush(response.buffer(allocator: channel.allocator)).whenComplete { _ in
                channel.close(promise: nil)
            }
        }
    }

    /// Releases what the session held; the connection has closed.
    private func end() {
        guard case .routed(let route, let lease) = self.state else {
            self.state = .ended
            return
        }
        self.state = .ended
        self.host.counts.close(lease)
        self.host.cancelRoutes.forget(session: self.id)
        if self.listener == .rw { self.host.writeSessions.remove(self, node: route.node) }
    }

    private func count(_ result: BalancerOutcomes.Result, node: String) {
        self.host.outcomes.count(.init(balancer: self.balancer, listener: self.listener, node: node, result: result))
    }

    private static func unreachable(_ route: FrontDoorHandler.Route, _ error: Error) -> ErrorResponse {
        ErrorResponse(code: .connectionFailure, message: "tunnelmesh: cannot reach \"\(route.service)\" on \(route.node): \(error)")
    }
}
