import Foundation
import Logging
import MeshConfig
import MeshTLS
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix

/// Everything one node runs for the mesh: its tunnel listener, a link per peer, and its forwards.
/// `reload` swaps in a new config and certificates while unchanged tunnels and streams go on.
public final class MeshNode: Sendable {
    public let name: String
    public let peers: PeerTable
    /// Handshake failures and stream outcomes, for metrics.
    public let events: TunnelEvents
    private let group: EventLoopGroup
    /// The event loop of this node's balancer sessions and of its tunnels to the nodes they are
    /// routed to (see `eventLoop(forLinkTo:config:)`).
    public let balancerLoop: EventLoop
    private let logger: Logger
    private let inherited: [String: CInt]
    /// The config and TLS contexts new connections use; replaced as a whole by `reload`.
    private let generation: NIOLockedValueBox<Generation>
    private let links = NIOLockedValueBox<[String: PeerLink]>([:])
    private let meshListener = NIOLockedValueBox<Channel?>(nil)
    private let forwards: ForwardSet
    /// The connections to service targets kept ready (`preconnect`), one set per event loop.
    private let spares: [ObjectIdentifier: SpareConnections]
    /// Who hears the peers' notes (`onNote`).
    private let noteHandler = NIOLockedValueBox<(@Sendable (_ peer: String, PeerNote) -> Void)?>(nil)

    private struct Generation: Sendable {
        var config: MeshConfiguration
        var serverTLS: TLSContext
        var clientTLS: TLSContext
    }

    public init(
        config: MeshConfiguration,
        node: String,
        group: EventLoopGroup,
        serverTLS: TLSContext,
        clientTLS: TLSContext,
        logger: Logger,
        inheritedListeners: [String: CInt] = [:]
    ) {
        self.inherited = inheritedListeners
        self.name = node
        self.group = group
        self.balancerLoop = group.next()
        self.logger = logger
        self.peers = PeerTable()
        self.events = TunnelEvents(
            peers: Set(config.nodes.keys).subtracting([node]),
            services: Set(config.services.keys)
        )
        self.forwards = ForwardSet(group: group, inherited: inheritedListeners, events: self.events, logger: logger)
        var spares: [ObjectIdentifier: SpareConnections] = [:]
        for loop in group.makeIterator() {
            spares[ObjectIdentifier(loop)] = SpareConnections(loop: loop, logger: logger)
        }
        self.spares = spares
        self.generation = NIOLockedValueBox(Generation(config: config, serverTLS: serverTLS, clientTLS: clientTLS))
        let links = config.sortedNodeNames.filter { $0 != node }.compactMap { self.makeLink(peer: $0, config: config) }
        self.links.withLockedValue { table in
            for link in links { table[link.peer] = link }
        }
    }

    /// The systemd socket name of the tunnel listener (README, "Units").
    public static let meshListenerName = NodeListener.meshName

    /// The config currently in force.
    public var config: MeshConfiguration { self.generation.withLockedValue { $0.config } }
    /// What the running tunnels are authenticated with: a reload whose credentials differ renews them.
    public var credentials: LocalCredentials { self.generation.withLockedValue { $0.serverTLS.credentials } }

    /// Binds every listener of this node (the mesh port and its forwards) and starts the links.
    /// Throws, naming the address, when a listener cannot be bound.
    public func start() async throws {
        let config = self.config
        let own = config.nodes[self.name]!.address
        let listener = TunnelListener(node: self.name, settings: config.tunnel, events: self.events, logger: self.logger)
        let generation = self.generation
        let links = self.links
        // Links first: each enters the peer table as it starts, and a tunnel a peer dials in must
        // find its entry there. Started after the listener, a peer that dialed in at once came up
        // unseen: its link was up but `meshctl peers` said down until it next changed (found with
        // 32 nodes started together, scripts/bench/scale.sh).
        let started = self.links.withLockedValue { Array($0.values) }
        for link in started { link.start() }
        do {
            let socket = ListenSocket.choose(name: Self.meshListenerName, endpoint: own, inherited: self.inherited)
            let channel = try await listener.bind(
                group: self.group,
                socket: socket,
                tls: { generation.withLockedValue { $0.serverTLS } },
                policy: {
                    generation.withLockedValue { generation in
                        PeerPolicy.declaredNode(mesh: generation.config.mesh, nodes: Set(links.withLockedValue { $0.keys }))
                    }
                },
                serving: self.serving()
            ) { peer in links.withLockedValue { $0[peer] } }.get()
            self.meshListener.withLockedValue { $0 = channel }
        } catch {
            for link in started { _ = link.stop() }  // no dialing from a node that will not run
            throw ListenError(what: "mesh listener", endpoint: own, underlying: error)
        }
        for forward in config.forwards(on: self.name) {
            try await self.openForward(forward)
        }
        self.logger.info(
            "node \(self.name) listening on \(own), \(started.count) peers, \(config.forwards(on: self.name).count) forwards"
        )
    }

    /// Applies a new config and certificates: new handshakes use the new TLS contexts and access
    /// rules at once; added peers get tunnels, removed peers' tunnels close, peers whose certificate
    /// the new CRL revokes are disconnected; every other tunnel, and every stream on it, goes on.
    /// The caller has validated `config` and built the contexts; nothing changes if this throws.
    public func reload(
        config: MeshConfiguration,
        serverTLS: TLSContext,
        clientTLS: TLSContext,
        revokedSerials: Set<String>
    )
        async throws -> ReloadSummary
    {
        let current = self.links.withLockedValue { $0 }
        let plan = try self.plan(config: config, revokedSerials: revokedSerials)
        var summary = ReloadSummary()

        // Prepare everything that can fail before changing anything: new links (not started yet)
        // and the listeners of new forwards. A failure undoes the preparation and leaves the node
        // exactly as it was, so a rejected reload is really rejected.
        var newLinks: [String: PeerLink] = [:]
        for peer in plan.addedPeers {
            newLinks[peer] = self.makeLink(peer: peer, config: config)
        }
        let waitLimit = TimeAmount(config.tunnel.handshakeTimeout)
        var opened: [ForwardKey: Channel] = [:]
        do {
            for forward in plan.openedForwards {
                guard let link = newLinks[forward.node] ?? current[forward.node] else { continue }
                opened[ForwardKey(forward)] = try await self.forwards.bind(forward, link: link, waitLimit: waitLimit)
            }
        } catch {
            for channel in opened.values { try? await channel.close() }
            throw error
        }

        // Commit.
        self.generation.withLockedValue { $0 = Generation(config: config, serverTLS: serverTLS, clientTLS: clientTLS) }
        self.events.declare(peers: Set(config.nodes.keys).subtracting([self.name]), services: Set(config.services.keys))
        for peer in plan.removedPeers {
            guard let link = current[peer] else { continue }
            self.links.withLockedValue { _ = $0.removeValue(forKey: peer) }
            try? await link.stop().get()
            self.peers.remove(peer)
            summary.removedPeers.append(peer)
        }
        for peer in plan.addedPeers {
            guard let link = newLinks[peer] else { continue }
            link.start()  // in the peer table before the listener lets the peer in (see `start()`)
            self.links.withLockedValue { $0[peer] = link }
            summary.addedPeers.append(peer)
        }
        for key in plan.removedForwards {
            if await self.forwards.close(key) { summary.removedForwards.append("\(key)") }
        }
        for (key, channel) in opened { self.forwards.register(channel, for: key) }
        summary.addedForwards += opened.keys.map(\.description).sorted()
        for forward in plan.deferredForwards {
            do {
                try await self.openForward(forward)
                summary.addedForwards.append("\(ForwardKey(forward))")
            } catch {
                self.logger.error("reload: \(error)")
                summary.failedForwards.append("\(forward.listen): \(error)")
            }
        }

        // Revocations: the CRL is checked at handshake time, so a live tunnel (or one still
        // draining) must be cut by hand.
        let reloadedAt = Date()
        let kept = self.links.withLockedValue { $0 }.filter { !plan.addedPeers.contains($0.key) }
        for (peer, link) in kept.sorted(by: { $0.key < $1.key }) {
            let closed = (try? await link.closeRevoked(revokedSerials).get()) ?? []
            if !closed.isEmpty {
                self.logger.warning("peer \(peer) certificate \(closed.joined(separator: ", ")) is revoked, disconnecting")
                summary.revokedPeers.append(peer)
            }
            // Certificate rotation: tunnels authenticated with what this reload replaced are renewed.
            link.reauthenticate(with: serverTLS.credentials, reloadedAt: reloadedAt, drainLimit: config.tunnel.shutdownGrace)
        }
        let targets = Self.preconnectTargets(of: config, on: self.name)
        for pool in self.spares.values { pool.loop.execute { pool.keep(only: targets) } }
        self.logger.info("reloaded \(config.file): \(summary)")
        return summary
    }

    /// What `reload` would do with `config` now: the one planning step of a reload and of a dry
    /// run, from the running links, forwards and live peer certificates (see `ReloadPlan`).
    /// Throws what a reload would be rejected with for a change that needs a restart.
    public func plan(
        config: MeshConfiguration,
        revokedSerials: Set<String>,
        trustChanged: Bool = false
    ) throws(ReloadError) -> ReloadPlan {
        var serials: [String: String] = [:]
        for status in self.peers.snapshot() {
            if let serial = status.certificateSerial { serials[status.name] = serial }
        }
        return try ReloadPlan.make(
            node: self.name,
            running: self.config,
            new: config,
            links: self.links.withLockedValue { $0.mapValues(\.address) },
            forwards: self.forwards.keys,
            trustChanged: trustChanged,
            liveSerials: serials,
            revokedSerials: revokedSerials
        )
    }

    /// Stops accepting, sends GOAWAY on every tunnel, waits up to `grace` for open streams to
    /// finish, then closes everything.
    public func shutdown(grace: Duration) async {
        if let listener = self.meshListener.withLockedValue({ $0 }) { try? await listener.close() }
        await self.forwards.closeAll()
        let links = self.links.withLockedValue { Array($0.values) }
        for link in links { link.connection?.sendGoAway() }
        let deadline = ContinuousClock.now + grace
        while ContinuousClock.now < deadline, self.peers.snapshot().contains(where: { $0.streamsActive > 0 }) {
            try? await Task.sleep(for: .milliseconds(50))
        }
        for link in links { try? await link.stop().get() }
        for pool in self.spares.values { try? await pool.loop.submit { pool.stop() }.get() }
    }

    /// The targets of `node`'s services that keep spare connections.
    private static func preconnectTargets(of config: MeshConfiguration, on node: String) -> Set<LocalTarget> {
        Set(
            config.services.values.compactMap { service in
                service.on[node].map { LocalTarget($0, preconnect: service.preconnect) }
            }.filter { $0.preconnect > 0 }
        )
    }

    /// Carries an accepted local connection to `service` on `node` through the tunnel to that node,
    /// the way a forward does (the balancer's front door uses this). Call on `channel`'s event
    /// loop before it reads; bytes the caller already read it fires down the pipeline after this
    /// returns, and they go on the stream at once (the serving node holds them until its service
    /// is connected). Throws `PeerUnavailableError`, leaving `channel` alone, when no tunnel to
    /// `node` is up, so the caller can answer in its own protocol. `opened` hears whether the
    /// stream opened; when it fails (refused, or the service unreachable on `node`) the channel is
    /// handed back open for `opened` to answer and close, or, without `opened`, reset.
    public func bridge(
        _ channel: Channel,
        toService service: String,
        on node: String,
        opened: (@Sendable (Channel, Result<Void, Error>) -> Void)? = nil
    ) throws {
        if node == self.name {
            return try self.bridgeLocally(channel, toService: service, opened: opened)
        }
        guard let link = self.links.withLockedValue({ $0[node] }), let tunnel = link.connection else {
            self.events.stream(peer: node, service: service, result: .failed)
            throw PeerUnavailableError(peer: node)
        }
        try StreamBridge.bridge(
            channel,
            to: service,
            over: tunnel,
            link: link,
            events: self.events,
            logger: self.logger,
            opened: opened
        )
    }

    /// A balancer on a database node routing to that node's own PostgreSQL: straight to the
    /// service's local target, no tunnel (and no allow list: it is this node's own agent).
    private func bridgeLocally(
        _ channel: Channel,
        toService service: String,
        opened: (@Sendable (Channel, Result<Void, Error>) -> Void)?
    ) throws {
        guard let settings = self.config.services[service], let target = settings.on[self.name] else {
            throw LocalServiceError(service: service, node: self.name)
        }
        let pair = Splice.makeLocalPair(clientLoop: channel.eventLoop, serviceLoop: channel.eventLoop)
        try channel.pipeline.syncOperations.addHandler(pair.client)
        let serviceSide = pair.service
        if settings.preconnect > 0,
            let spares = self.spares[ObjectIdentifier(channel.eventLoop)],
            spares.take(LocalTarget(target, preconnect: settings.preconnect), handing: serviceSide) != nil
        {
            opened?(channel, .success(()))
            return
        }
        let logger = self.logger
        LocalConnector.connect(to: target, on: channel.eventLoop) { local in
            try local.pipeline.syncOperations.addHandler(serviceSide)
        }.whenComplete { result in
            switch result {
            case .success:
                opened?(channel, .success(()))
            case .failure(let error):
                logger.warning("local service \(service) at \(target) unreachable: \(error)")
                if let opened { opened(channel, .failure(error)) } else { TCPReset.reset(channel) }
            }
        }
    }

    /// Sends `bytes` to `service` on `node` on a stream of its own, ends it, and completes once the
    /// service has closed it (a PostgreSQL CancelRequest is such a one-shot exchange).
    public func deliver(_ bytes: ByteBuffer, toService service: String, on node: String) -> EventLoopFuture<Void> {
        if node == self.name, let target = self.config.services[service]?.on[self.name] {
            return OneShotDelivery.deliver(bytes, toLocal: target, on: self.group.any())
        }
        guard let link = self.links.withLockedValue({ $0[node] }), let tunnel = link.connection else {
            return self.group.any().makeFailedFuture(PeerUnavailableError(peer: node))
        }
        return OneShotDelivery.deliver(bytes, to: service, over: tunnel, link: link, events: self.events)
    }

    /// Sends `note` to every peer whose tunnel is up (see `PeerNote`).
    public func broadcast(_ note: PeerNote) {
        let tunnels = self.links.withLockedValue { $0.values.compactMap(\.connection) }
        for tunnel in tunnels { tunnel.send(note) }
    }

    /// Sets who hears the notes peers send; `peer` is the sender's verified name.
    public func onNote(_ handler: @escaping @Sendable (_ peer: String, PeerNote) -> Void) {
        self.noteHandler.withLockedValue { $0 = handler }
    }

    /// The socket a listener named `name` (README's socket-activation names) should use: the
    /// one systemd passed under that name, else a new one bound to `endpoint`.
    public func listenSocket(name: String, endpoint: Endpoint) -> ListenSocket {
        ListenSocket.choose(name: name, endpoint: endpoint, inherited: self.inherited)
    }

    /// One PING round trip through the tunnel to `peer`.
    public func ping(peer: String) async throws -> Duration {
        guard let connection = self.links.withLockedValue({ $0[peer] })?.connection else {
            throw PeerUnavailableError(peer: peer)
        }
        return try await connection.ping().get().duration
    }

    // MARK: Wiring

    private func makeLink(peer: String, config: MeshConfiguration) -> PeerLink? {
        guard let address = config.nodes[peer]?.address else { return nil }
        let identity = MeshIdentity(mesh: config.mesh, node: peer)
        let settings = config.tunnel
        let backoff = Backoff(base: TimeAmount(settings.backoffMin), max: TimeAmount(settings.backoffMax))
        let serving = self.serving()
        let generation = self.generation
        let logger = self.logger
        return PeerLink(
            peer: peer,
            address: address,
            dialer: self.name < peer,
            eventLoop: self.eventLoop(forLinkTo: peer, config: config),
            table: self.peers,
            events: self.events,
            backoff: backoff,
            reauthenticateBefore: settings.reauthenticateBefore,
            localCredentials: { generation.withLockedValue { $0.serverTLS.credentials } },
            logger: logger,
            dialTunnel: { link in
                Self.dial(
                    link,
                    identity: identity,
                    tls: generation.withLockedValue { $0.clientTLS },
                    settings: settings,
                    serving: serving,
                    logger: logger
                )
            }
        )
    }

    /// Every socket of a stream lives on its tunnel's event loop, so no message hops threads. A
    /// balancer session is accepted before it is routed, so the tunnels to every node a balancer
    /// here can route to share one loop, `balancerLoop`, and the balancer's listeners accept on it
    /// (as pgbouncer runs on one thread); other tunnels spread over the group.
    private func eventLoop(forLinkTo peer: String, config: MeshConfiguration) -> EventLoop {
        let routedTo = config.balancers(on: self.name).contains { balancer in
            config.services[balancer.service]?.on[peer] != nil
        }
        return routedTo ? self.balancerLoop : self.group.next()
    }

    private func openForward(_ forward: ForwardSettings) async throws {
        guard let link = self.links.withLockedValue({ $0[forward.node] }) else { return }
        try await self.forwards.open(forward, link: link, waitLimit: TimeAmount(self.config.tunnel.handshakeTimeout))
    }

    /// Access rules and per-peer state, read afresh for every stream so a reload applies at once.
    private func serving() -> TunnelConnection.Serving {
        let generation = self.generation
        let links = self.links
        let node = self.name
        let noteHandler = self.noteHandler
        let spares = self.spares
        return TunnelConnection.Serving(
            access: { generation.withLockedValue { ServiceAccess(node: node, services: $0.config.services) } },
            peerState: { peer in
                guard let link = links.withLockedValue({ $0[peer] }) else { return nil }
                let counters = link.counters
                let maxStreams = generation.withLockedValue { $0.config.tunnel.maxStreamsPerPeer }
                return (counters, StreamLimit(maximum: maxStreams, counters: counters))
            },
            note: { peer, note in
                if note == PeerNote.renewTunnel {
                    links.withLockedValue { $0[peer] }?.renewalRequested()
                } else {
                    noteHandler.withLockedValue { $0 }?(peer, note)
                }
            },
            spares: { loop in spares[ObjectIdentifier(loop)] }
        )
    }

    private static func dial(
        _ link: PeerLink,
        identity: MeshIdentity,
        tls: TLSContext,
        settings: TunnelSettings,
        serving: TunnelConnection.Serving,
        logger: Logger
    ) -> EventLoopFuture<TunnelConnection> {
        guard case .tcp(let host, let port) = link.address else {
            return link.eventLoop.makeFailedFuture(ChannelError.badInterfaceAddressFamily)
        }
        let made = link.eventLoop.makePromise(of: TunnelConnection.self)
        let events = TunnelConnection.Events(
            up: { connection, completed in link.tunnelUp(connection, completed) },
            closed: { connection, error in link.tunnelClosed(connection, error) },
            rtt: { _, rtt in link.measured(rtt: rtt) }
        )
        let connected = ClientBootstrap(group: link.eventLoop)
            .connectTimeout(TimeAmount(settings.handshakeTimeout))
            .channelOption(.tcpOption(.tcp_nodelay), value: 1)
            .channelOption(.recvAllocator, value: TunnelTuning.receiveAllocator)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    made.succeed(
                        try TunnelConnection.configure(
                            channel: channel,
                            mode: .client,
                            tls: tls,
                            policy: .exactly(identity),
                            settings: settings,
                            serving: serving,
                            events: events,
                            logger: logger
                        )
                    )
                }
            }
            .connect(host: host, port: port)
        connected.whenFailure { made.fail($0) }
        return connected.flatMap { _ in made.futureResult }
    }
}
