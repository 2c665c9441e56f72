import MeshBalancer
import MeshConfig
import MeshControlModel
import NIOCore

/// The balancers that listen on this node, as `/v1/backends` and `/metrics` read them: which
/// database nodes each one routes to, joined with the live registry, connection counts and
/// outcomes. Holds no state of its own: the config is read through a closure at each use, so a
/// reload shows at once. Safe to use from any thread.
public final class BalancerView: Sendable {
    /// One balancer that listens on this node, as the running config declares it.
    struct Balancer: Sendable {
        var name: String
        var service: String
        /// The service's database nodes (its `on` keys), sorted.
        var nodes: [String]
        /// The listeners it has on this node (rw, ro or both).
        var listeners: [ListenerKind]
    }

    /// Connections of one balancer's listener to one database node.
    public struct Route: Sendable, Hashable {
        public var balancer: String
        public var listener: ListenerKind
        public var node: String

        public init(balancer: String, listener: ListenerKind, node: String) {
            self.balancer = balancer
            self.listener = listener
            self.node = node
        }
    }

    /// Everything one read of the view gives, taken together so a scrape reads each source once.
    public struct Snapshot: Sendable {
        /// One row per balancer on this node and database node of its service, by balancer then node.
        public var backends: [BackendInfo]
        /// Live connections per balancer, listener and node: every declared combination, zeros
        /// included, plus any live lease of a current balancer to a node no longer declared.
        public var activeConnections: [Route: Int]
        /// Connections taken so far by balancer, listener, node and result, for the balancers still
        /// declared here.
        public var outcomes: [BalancerOutcomes.Key: UInt64]
    }

    public let node: String
    public let registry: BackendRegistry
    public let connections: ConnectionCounts
    public let outcomes: BalancerOutcomes
    /// The running configuration, read fresh each time (meshd passes `{ mesh.config }`).
    private let config: @Sendable () -> MeshConfiguration
    /// This agent's monotonic clock, which judges report freshness as the routing does.
    private let now: @Sendable () -> NIODeadline

    /// `node`: this agent's node name; `config`: returns the running configuration, so rows and
    /// series of balancers (or database nodes) a reload removed disappear and new ones appear.
    /// The registry, counts and outcomes are the live objects the balancers write to.
    public init(
        node: String,
        config: @escaping @Sendable () -> MeshConfiguration,
        registry: BackendRegistry,
        connections: ConnectionCounts,
        outcomes: BalancerOutcomes,
        now: @escaping @Sendable () -> NIODeadline = { .now() }
    ) {
        self.node = node
        self.config = config
        self.registry = registry
        self.connections = connections
        self.outcomes = outcomes
        self.now = now
    }

    private static func balancers(of config: MeshConfiguration, on node: String) -> [Balancer] {
        config.balancers(on: node).map { settings in
            let listeners = settings.on[node]
            return Balancer(
                name: settings.name,
                service: settings.service,
                nodes: (config.services[settings.service]?.on.keys).map { $0.sorted() } ?? [],
                listeners: ListenerKind.allCases.filter { ($0 == .rw ? listeners?.rw : listeners?.ro) != nil }
            )
        }
    }

    /// The rows of `GET /v1/backends`.
    public func backends() -> [BackendInfo] {
        self.snapshot().backends
    }

    /// Reads the registry, the live counts and the outcomes once, for the balancers declared now.
    public func snapshot() -> Snapshot {
        let now = self.now()
        let balancers = Self.balancers(of: self.config(), on: self.node)
        var live: [Route: Int] = [:]
        for (lease, count) in self.connections.snapshot() {
            live[Route(balancer: lease.balancer, listener: lease.listener, node: lease.node)] = count
        }
        let names = Set(balancers.map(\.name))

        var backends: [BackendInfo] = []
        var active: [Route: Int] = [:]
        for balancer in balancers {
            for state in self.registry.backends(service: balancer.service, nodes: balancer.nodes, at: now) {
                func count(_ listener: ListenerKind) -> Int {
                    live[Route(balancer: balancer.name, listener: listener, node: state.node)] ?? 0
                }
                backends.append(
                    BackendInfo(
                        balancer: balancer.name,
                        state: state,
                        connectionsRW: count(.rw),
                        connectionsRO: count(.ro)
                    )
                )
                for listener in balancer.listeners {
                    active[Route(balancer: balancer.name, listener: listener, node: state.node)] = count(listener)
                }
            }
        }
        // Sessions opened before a reload dropped their node stay open and are still counted.
        for (route, count) in live where names.contains(route.balancer) { active[route] = count }

        let outcomes = self.outcomes.snapshot().filter { names.contains($0.key.balancer) }
        return Snapshot(backends: backends, activeConnections: active, outcomes: outcomes)
    }
}
