import Foundation
import Logging
import MeshConfig
import MeshTLS
import MeshTunnel
import NIOConcurrencyHelpers
import NIOCore

/// Everything the balancer part of one agent runs: the role probes of the PostgreSQL this node
/// serves, the report exchange with the peers, the registry every routing decision reads, and the
/// `rw`/`ro` listeners of every balancer that listens on this node.
public final class BalancerHost: Sendable {
    /// The latest report of every database node (the one place `meshctl backends` reads).
    public let registry: BackendRegistry
    /// Live connections per balancer, listener and node.
    public let counts = ConnectionCounts()
    /// Connections taken, per balancer, listener, node and result.
    public let outcomes = BalancerOutcomes()

    /// The node whose tunnels sessions are carried through.
    let node: MeshNode
    /// The live `rw` sessions, for `DemotionGuard` to cut.
    let writeSessions: WriteSessions
    /// Which node issued each live session's cancel key.
    let cancelRoutes: CancelRoutes
    private let group: EventLoopGroup
    private let logger: Logger
    private let exchange: ReportExchange
    private let probes: LocalProbes
    private let listeners = NIOLockedValueBox<[BalancerListenerPlan.Listener: Channel]>([:])
    /// Each balancer's front-door TLS, replaced on reload; read for every new connection.
    private let tls: NIOLockedValueBox<[String: TLSContext]>

    /// `tls`: the front-door TLS of each balancer that has a `tls` block (`FrontDoorTLS.context`).
    public init(node: MeshNode, group: EventLoopGroup, logger: Logger, tls: [String: TLSContext] = [:]) {
        self.tls = NIOLockedValueBox(tls)
        self.node = node
        self.group = group
        self.logger = logger
        let registry = BackendRegistry(config: node.config)
        let sessions = WriteSessions()
        let demotion = DemotionGuard(node: node, registry: registry, sessions: sessions, logger: logger)
        let exchange = ReportExchange(registry: registry, node: node, logger: logger) { demotion.check(after: $0) }
        self.registry = registry
        self.writeSessions = sessions
        self.cancelRoutes = CancelRoutes(logger: logger)
        self.exchange = exchange
        self.probes = LocalProbes(node: node.name, logger: logger, group: group) { exchange.publish($0) }
    }

    /// Starts the probes and the exchange and opens every balancer listener of this node. Throws,
    /// naming the listener and address, when one cannot be opened (nothing stays open then).
    public func start() async throws {
        self.exchange.start()
        do {
            try await self.openListeners(BalancerListenerPlan.listeners(self.node.config, node: self.node.name))
        } catch {
            await self.stop()
            throw error
        }
        self.probes.apply(self.node.config)
    }

    /// Follows a reloaded config (already in force in the `MeshNode`): probes, registry and
    /// listeners. A listener that cannot be opened is logged and left out.
    public func reload(tls: [String: TLSContext]) async {
        self.tls.withLockedValue { $0 = tls }
        let config = self.node.config
        self.registry.update(config: config)
        self.probes.apply(config)
        let plan = self.listenerPlan(config: config)
        let removed = self.listeners.withLockedValue { listeners in plan.closed.compactMap { listeners.removeValue(forKey: $0) } }
        for channel in removed { try? await channel.close() }
        for listener in plan.opened {
            do {
                try await self.openListeners([listener])
            } catch {
                self.logger.error("reload: \(error)")
            }
        }
    }

    /// The balancer listeners `config` would open and close here, against those open now.
    public func listenerPlan(config: MeshConfiguration) -> BalancerListenerPlan {
        BalancerListenerPlan.make(config: config, node: self.node.name, open: self.listeners.withLockedValue { Set($0.keys) })
    }

    /// Closes the listeners (open sessions go on until the node drains) and stops the probes.
    public func stop() async {
        let channels = self.listeners.withLockedValue { listeners in
            defer { listeners.removeAll() }
            return Array(listeners.values)
        }
        for channel in channels { try? await channel.close() }
        await self.probes.stop()
    }

    /// `rw->db1, ro: db2 db3` per balancer on this node, for systemd's STATUS line; nil when none.
    public func routeSummary() -> String? {
        let config = self.node.config
        let balancers = config.balancers(on: self.node.name)
        var parts: [String] = []
        for balancer in balancers {
            guard let service = config.services[balancer.service] else { continue }
            parts.append(self.routeSummary(of: balancer, service: service, named: balancers.count > 1))
        }
        return parts.isEmpty ? nil : parts.joined(separator: "; ")
    }

    // A plain function, not a closure in `compactMap`: Swift 6.3.1's release-mode copy propagation
    // crashed ("Found ownership error") on the closure form.
    private func routeSummary(of balancer: BalancerSettings, service: ServiceSettings, named: Bool) -> String {
        let backends = self.routableBackends(of: service)
        let router = Router(settings: balancer)
        let rw: String
        switch router.choose(.rw, backends: backends, connections: [:]) {
        case .success(let node): rw = node
        case .failure: rw = "none"
        }
        let readers = router.readableStandbys(among: backends)
        let prefix = named ? "\(balancer.name): " : ""
        return "\(prefix)rw->\(rw), ro: \(readers.isEmpty ? "none" : readers.joined(separator: " "))"
    }

    // MARK: Sessions (called by each BalancerSession)

    /// The event loop balancer sessions live on: the one their tunnels share.
    var sessionLoop: EventLoop { self.node.balancerLoop }

    /// The TLS context the front door of `balancer` offers, if it has one.
    func tlsContext(balancer: String) -> TLSContext? {
        self.tls.withLockedValue { $0[balancer] }
    }

    struct Chosen {
        var service: String
        var lease: ConnectionCounts.Lease
    }

    func route(balancer name: String, listener: ListenerKind) -> Result<Chosen, ErrorResponse> {
        let config = self.node.config
        guard let balancer = config.balancers[name], let service = config.services[balancer.service] else {
            self.outcomes.count(.init(balancer: name, listener: listener, node: BalancerOutcomes.noNode, result: .refused))
            return .failure(ErrorResponse(code: .cannotConnectNow, message: "tunnelmesh: balancer \"\(name)\" is no longer configured"))
        }
        let backends = self.routableBackends(of: service)
        let router = Router(settings: balancer)
        let chosen = self.counts.open(balancer: name, listener: listener) { connections in
            router.choose(listener, backends: backends, connections: connections)
        }
        switch chosen {
        case .success(let lease):
            return .success(Chosen(service: service.name, lease: lease))
        case .failure(let refusal):
            self.outcomes.count(.init(balancer: name, listener: listener, node: BalancerOutcomes.noNode, result: .refused))
            return .failure(refusal)
        }
    }

    /// The service's backends as routing sees them. A report stays fresh for three probe
    /// intervals, but a node whose tunnel from here is not up cannot be reached whatever it last
    /// said: after a kill -9 its last report would otherwise draw new sessions (the least busy
    /// standby, as it just lost its sessions) for up to those three intervals, each refused with
    /// "no tunnel". Such a node counts as down from the moment its link left `up`.
    private func routableBackends(of service: ServiceSettings) -> [BackendState] {
        let backends = self.registry.backends(service: service.name, nodes: service.on.keys.sorted())
        let links = self.node.peers.snapshot()
        return backends.map { backend in
            guard backend.node != self.node.name, let link = links.first(where: { $0.name == backend.node }), link.state != .up else {
                return backend
            }
            var unreachable = backend
            unreachable.availability = .down(error: "no tunnel to \(backend.node) is up", since: link.since)
            return unreachable
        }
    }

    /// Delivers a client's CancelRequest to the node whose backend issued the key; PostgreSQL
    /// ignores a cancel it cannot match, and so do we (logged at debug level).
    func cancel(_ key: BackendKeyData) {
        guard let route = self.cancelRoutes.route(for: key) else {
            self.logger.debug("CancelRequest for \(key): no live session has that key; ignored")
            return
        }
        var bytes = ByteBuffer()
        key.writeCancelRequest(to: &bytes)
        self.node.deliver(bytes, toService: route.service, on: route.node).whenFailure { error in
            self.logger.info("CancelRequest for \(key) to \(route.service)@\(route.node) failed: \(error)")
        }
    }

    // MARK: Listeners

    private func openListeners(_ keys: some Collection<BalancerListenerPlan.Listener>) async throws {
        for key in BalancerListenerPlan.sorted(keys) {
            let listener = BalancerListener(
                balancer: key.balancer,
                kind: key.kind,
                endpoint: key.endpoint,
                host: self,
                logger: self.logger
            )
            let socket = self.node.listenSocket(name: listener.name, endpoint: key.endpoint)
            do {
                let channel = try await listener.bind(socket: socket, group: self.group).get()
                self.listeners.withLockedValue { $0[key] = channel }
                self.logger.info("balancer listener \(listener.name) on \(socket)")
            } catch {
                throw ListenError(what: "balancer listener \(listener.name)", endpoint: key.endpoint, underlying: error)
            }
        }
    }
}
