import Foundation
import Logging
import MeshConfig
import MeshTLS
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix

/// Everything one node runs for the mesh: its tunnel listener, a link per peer, and its forwards.
public final class MeshNode: Sendable {
    public let name: String
    public let peers: PeerTable
    /// Handshake failures and stream outcomes, for metrics.
    public let events: TunnelEvents
    private let config: MeshConfiguration
    private let group: EventLoopGroup
    private let serverTLS: TLSContext
    private let clientTLS: TLSContext
    private let logger: Logger
    private let links: [String: PeerLink]
    private let linkTable: NIOLockedValueBox<[String: PeerLink]>
    private let inherited: [String: CInt]
    private let listeners = NIOLockedValueBox<[Channel]>([])

    public init(
        config: MeshConfiguration, node: String, group: EventLoopGroup,
        serverTLS: TLSContext, clientTLS: TLSContext, logger: Logger,
        inheritedListeners: [String: CInt] = [:]
    ) {
        self.inherited = inheritedListeners
        self.name = node
        self.config = config
        self.group = group
        self.serverTLS = serverTLS
        self.clientTLS = clientTLS
        self.logger = logger
        let peers = PeerTable()
        self.peers = peers
        let events = TunnelEvents(
            peers: Set(config.nodes.keys).subtracting([node]), services: Set(config.services.keys))
        self.events = events
        let settings = config.tunnel
        // Links need the serving rules (for reverse streams) and the rules need the links.
        let linkTable = NIOLockedValueBox<[String: PeerLink]>([:])
        let serving = Self.serving(config: config, node: node, links: linkTable)
        let backoff = Backoff(base: TimeAmount(settings.backoffMin), max: TimeAmount(settings.backoffMax))
        var links: [String: PeerLink] = [:]
        for peer in config.sortedNodeNames where peer != node {
            guard let address = config.nodes[peer]?.address else { continue }
            let identity = MeshIdentity(mesh: config.mesh, node: peer)
            links[peer] = PeerLink(
                peer: peer, address: address, dialer: node < peer, eventLoop: group.next(), table: peers,
                events: events, backoff: backoff, logger: logger
            ) { link in
                Self.dial(link, identity: identity, tls: clientTLS, settings: settings, serving: serving, logger: logger)
            }
        }
        self.links = links
        linkTable.withLockedValue { $0 = links }
        self.linkTable = linkTable
    }

    /// The systemd socket name of the tunnel listener (DESIGN.md).
    public static let meshListenerName = "mesh"

    /// Binds every listener of this node (the mesh port and its forwards) and starts the links.
    /// Throws, naming the address, when a listener cannot be bound.
    public func start() async throws {
        let own = self.config.nodes[self.name]!.address
        let listener = TunnelListener(
            node: self.name, settings: self.config.tunnel, events: self.events, logger: self.logger)
        let policy = PeerPolicy.declaredNode(mesh: self.config.mesh, nodes: Set(self.links.keys))
        let links = self.links
        let serving = Self.serving(config: self.config, node: self.name, links: self.linkTable)
        do {
            let socket = ListenSocket.choose(name: Self.meshListenerName, endpoint: own, inherited: self.inherited)
            let channel = try await listener.bind(
                group: self.group, socket: socket, tls: self.serverTLS, policy: policy, serving: serving
            ) { links[$0] }.get()
            self.listeners.withLockedValue { $0.append(channel) }
        } catch {
            throw ListenError(what: "mesh listener", endpoint: own, underlying: error)
        }
        for forward in self.config.forwards(on: self.name) {
            guard let link = self.links[forward.node] else { continue }
            do {
                let socket = ListenSocket.choose(
                    name: forward.listenerName, endpoint: forward.listen, inherited: self.inherited)
                let channel = try await ForwardListener(forward: forward, events: self.events, logger: self.logger)
                    .bind(group: self.group, socket: socket, link: link).get()
                self.listeners.withLockedValue { $0.append(channel) }
            } catch {
                throw ListenError(what: "forward \(forward.listenerName)", endpoint: forward.listen, underlying: error)
            }
        }
        for link in self.links.values { link.start() }
        self.logger.info(
            "node \(self.name) listening on \(own), \(self.links.count) peers, \(self.config.forwards(on: self.name).count) forwards")
    }

    /// Stops accepting, sends GOAWAY on every tunnel, waits up to `grace` for open streams to
    /// finish, then closes everything.
    public func shutdown(grace: Duration) async {
        for channel in self.listeners.withLockedValue({ channels in defer { channels = [] }; return channels }) { try? await channel.close() }
        for link in self.links.values { link.connection?.sendGoAway() }
        let deadline = ContinuousClock.now + grace
        while ContinuousClock.now < deadline, self.peers.snapshot().contains(where: { $0.streamsActive > 0 }) {
            try? await Task.sleep(for: .milliseconds(50))
        }
        for link in self.links.values { try? await link.stop().get() }
    }

    /// One PING round trip through the tunnel to `peer`.
    public func ping(peer: String) async throws -> Duration {
        guard let connection = self.links[peer]?.connection else { throw PeerUnavailableError(peer: peer) }
        return try await connection.ping().get().duration
    }

    // MARK: Wiring

    private static func serving(
        config: MeshConfiguration, node: String, links: NIOLockedValueBox<[String: PeerLink]>
    ) -> TunnelConnection.Serving {
        let maxStreams = config.tunnel.maxStreamsPerPeer
        return TunnelConnection.Serving(
            access: ServiceAccess(node: node, services: config.services),
            peerState: { peer in
                guard let link = links.withLockedValue({ $0[peer] }) else { return nil }
                let counters = link.counters
                return (counters, { counters.streamsActive.load(ordering: .relaxed) < maxStreams })
            })
    }

    private static func dial(
        _ link: PeerLink, identity: MeshIdentity, tls: TLSContext, settings: TunnelSettings,
        serving: TunnelConnection.Serving, logger: Logger
    ) -> EventLoopFuture<TunnelConnection> {
        guard case .tcp(let host, let port) = link.address else {
            return link.eventLoop.makeFailedFuture(ChannelError.badInterfaceAddressFamily)
        }
        let made = link.eventLoop.makePromise(of: TunnelConnection.self)
        let events = TunnelConnection.Events(
            up: { connection, completed in link.tunnelUp(connection, completed) },
            closed: { connection, error in link.tunnelClosed(connection, error) },
            rtt: { _, rtt in link.measured(rtt: rtt) })
        let connected = ClientBootstrap(group: link.eventLoop)
            .connectTimeout(TimeAmount(settings.handshakeTimeout))
            .channelOption(.tcpOption(.tcp_nodelay), value: 1)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    made.succeed(try TunnelConnection.configure(
                        channel: channel, mode: .client, tls: tls, policy: .exactly(identity),
                        settings: settings, serving: serving, events: events, logger: logger))
                }
            }
            .connect(host: host, port: port)
        connected.whenFailure { made.fail($0) }
        return connected.flatMap { _ in made.futureResult }
    }
}

/// A listener could not be opened.
public struct ListenError: Error, CustomStringConvertible {
    public var what: String
    public var endpoint: Endpoint
    public var underlying: Error
    public var description: String {
        "cannot listen for \(self.what) on \(self.endpoint): \(self.underlying) — is another process using it?"
    }
}

/// `meshctl ping` or a stream named a peer whose tunnel is not up.
public struct PeerUnavailableError: Error, CustomStringConvertible {
    public var peer: String
    public var description: String { "no tunnel to \(self.peer) is up" }
}
