import Foundation
import MeshBalancer
import Metrics
import NIOConcurrencyHelpers
import Prometheus

/// The agent's Prometheus series, served at `GET /metrics`: read from a `MetricsSource` at each
/// scrape into a swift-prometheus registry and emitted in the Prometheus text format.
///
/// Gauges are set to the current value. Counters are advanced by what the source counted since the
/// last scrape, so each stays monotonic while the source remains the one place the count lives.
/// Series of peers that are gone (removed by a reload) disappear from the output.
///
/// Series (label values are bounded: declared names, `unknown`, and fixed reason/result sets):
/// - `meshd_peer_up{peer}`, `meshd_peer_rtt_seconds{peer}` (only while up), `meshd_streams_active{peer}`
/// - `meshd_tunnel_reconnects_total{peer}`, `meshd_bytes_total{peer,direction}` (`sent`, `received`)
/// - `meshd_handshake_failures_total{peer,reason}`, `meshd_streams_total{peer,service,result}`
/// - certificate rotation: `meshd_tunnel_credentials_expiry_timestamp_seconds{peer}` and
///   `meshd_tunnel_reauthentication_failing{peer}` (only while up), `meshd_tunnels_draining{peer}`,
///   `meshd_tunnel_reauthentications_total{peer}`
/// - with a `BalancerView`, for each balancer on this node and database node of its service:
///   `meshd_backend_up{balancer,node}`, `meshd_backend_role{balancer,node}` (1 primary, 0 standby,
///   -1 not up), `meshd_backend_lag_seconds{balancer,node}` (only when known),
///   `meshd_backend_patroni_role{balancer,node,role}` (1 for the role the node's Patroni reports,
///   only with a `patroni` key), `meshd_backend_patroni_running{balancer,node}` (only when Patroni answered),
///   `meshd_balancer_connections_active{balancer,listener,node}`,
///   `meshd_balancer_connections_total{balancer,listener,node,result}` (`node` is `none` when refused
///   before a node was chosen). Series of balancers a reload removed disappear, and so do the
///   backend series of database nodes it removed from a service.
public final class MeshMetrics: Sendable {
    /// The Prometheus text exposition format, version 0.0.4.
    public static let contentType = "text/plain; version=0.0.4; charset=utf-8"

    /// Every series this type exports, with its type and help text, in one place.
    enum Family: String, CaseIterable {
        case peerUp = "meshd_peer_up"
        case peerRTT = "meshd_peer_rtt_seconds"
        case streamsActive = "meshd_streams_active"
        case reconnects = "meshd_tunnel_reconnects_total"
        case credentialsExpiry = "meshd_tunnel_credentials_expiry_timestamp_seconds"
        case reauthenticationFailing = "meshd_tunnel_reauthentication_failing"
        case draining = "meshd_tunnels_draining"
        case reauthentications = "meshd_tunnel_reauthentications_total"
        case handshakeFailures = "meshd_handshake_failures_total"
        case streams = "meshd_streams_total"
        case bytes = "meshd_bytes_total"
        case backendUp = "meshd_backend_up"
        case backendRole = "meshd_backend_role"
        case backendLag = "meshd_backend_lag_seconds"
        case backendPatroniRole = "meshd_backend_patroni_role"
        case backendPatroniRunning = "meshd_backend_patroni_running"
        case balancerConnectionsActive = "meshd_balancer_connections_active"
        case balancerConnections = "meshd_balancer_connections_total"

        var help: String {
            switch self {
            case .peerUp: "1 while the tunnel to the peer is up, else 0."
            case .peerRTT: "Round-trip time of the last answered PING through the tunnel to the peer, while it is up."
            case .streamsActive: "Streams open now through the tunnel to the peer, in both directions."
            case .reconnects: "Tunnels to the peer established after the first one."
            case .credentialsExpiry:
                "Unix time at which the earliest certificate that authenticated the serving tunnel to the peer expires (it is closed then unless renewed), while up."
            case .reauthenticationFailing:
                "1 while the serving tunnel to the peer cannot be re-authenticated (a renewal failed, or no newer certificate to present), else 0; while up."
            case .draining: "Older tunnels to the peer still finishing their streams after a fresh one took over."
            case .reauthentications: "Fresh tunnels to the peer that took over from a serving one (certificate rotation)."
            case .handshakeFailures: "Failed TLS handshakes by peer (unknown if it never proved a declared name) and reason."
            case .streams: "Streams by peer, service and result (opened, refused, failed)."
            case .bytes: "Payload bytes carried through the tunnel to the peer, by direction (sent, received)."
            case .backendUp: "1 while the database node's latest report is fresh and its PostgreSQL works (routable), else 0."
            case .backendRole: "Role the database node reports: 1 primary, 0 standby, -1 unknown (not up)."
            case .backendLag: "Replay lag of a standby that is up, in seconds; absent on a primary or when unknown."
            case .backendPatroniRole:
                "1 for the node's role as its Patroni reports it (leader, standby_leader, sync_standby, replica, unknown if Patroni did not answer)."
            case .backendPatroniRunning:
                "1 while the node's Patroni says its PostgreSQL is running, else 0; absent when Patroni did not answer."
            case .balancerConnectionsActive: "Connections open now from the balancer's listener (rw, ro) to the database node."
            case .balancerConnections:
                "Connections taken by the balancer's listener, by database node (none if refused before one was chosen) and result (routed, refused, failed)."
            }
        }
    }

    /// One time series: a family and its label pairs in a fixed order.
    struct Series: Hashable {
        var family: Family
        var labels: [Label]

        struct Label: Hashable {
            var name: String
            var value: String
        }

        init(_ family: Family, _ labels: KeyValuePairs<String, String>) {
            self.family = family
            self.labels = labels.map { Label(name: $0.key, value: $0.value) }
        }

        var pairs: [(String, String)] { self.labels.map { ($0.name, $0.value) } }
    }

    /// What the registry holds for us between scrapes, and the source's count each counter was last advanced to.
    private struct Exported {
        var gauges: [Series: Prometheus.Gauge] = [:]
        var counters: [Series: (counter: Prometheus.Counter, at: UInt64)] = [:]
    }

    /// The registry behind `/metrics`. `bootstrapMetricsSystem()` routes swift-metrics instruments here too.
    public let registry: PrometheusCollectorRegistry
    private let source: any MetricsSource
    private let balancers: BalancerView?
    /// Held for a whole scrape, so concurrent scrapes neither double-count nor interleave their output.
    private let exported = NIOLockedValueBox(Exported())

    /// `balancers`: the balancers on this node, read at each scrape like `source`; nil for none.
    public init(
        source: any MetricsSource,
        balancers: BalancerView? = nil,
        registry: PrometheusCollectorRegistry = PrometheusCollectorRegistry()
    ) {
        self.source = source
        self.balancers = balancers
        self.registry = registry
    }

    /// Makes this registry the process's swift-metrics backend, so instruments created with
    /// swift-metrics anywhere in the agent (e.g. the balancer's) are served at `/metrics` too.
    /// Call once per process: swift-metrics allows a single bootstrap.
    public func bootstrapMetricsSystem() {
        MetricsSystem.bootstrap(PrometheusMetricsFactory(registry: self.registry))
    }

    /// Reads the source, brings the registry up to date, and returns the whole exposition text.
    public func scrape() -> String {
        self.exported.withLockedValue { exported in
            var (gauges, counters) = Self.values(self.source.metricsSnapshot())
            if let balancers = self.balancers {
                let (balancerGauges, balancerCounters) = Self.values(balancers.snapshot())
                gauges.merge(balancerGauges) { $1 }
                counters.merge(balancerCounters) { $1 }
            }
            self.update(&exported, gauges: gauges, counters: counters)
            return self.registry.emitToString()
        }
    }

    /// `GET /metrics`: a fresh scrape as a 200 response in the Prometheus text format.
    public func response() -> ControlResponse {
        ControlResponse(status: .ok, body: Data(self.scrape().utf8), contentType: Self.contentType)
    }

    /// The current value of every series the snapshot implies.
    static func values(_ snapshot: MetricsSnapshot) -> (gauges: [Series: Double], counters: [Series: UInt64]) {
        var gauges: [Series: Double] = [:]
        var counters: [Series: UInt64] = [:]
        for peer in snapshot.peers {
            let up = peer.state == .up
            gauges[Series(.peerUp, ["peer": peer.name])] = up ? 1 : 0
            if up, let rtt = peer.rttSeconds {
                gauges[Series(.peerRTT, ["peer": peer.name])] = rtt
            }
            gauges[Series(.streamsActive, ["peer": peer.name])] = Double(peer.streamsActive)
            counters[Series(.reconnects, ["peer": peer.name])] = peer.reconnects
            if up, let notAfter = peer.credentialsNotAfter {
                gauges[Series(.credentialsExpiry, ["peer": peer.name])] = notAfter.timeIntervalSince1970
                gauges[Series(.reauthenticationFailing, ["peer": peer.name])] = peer.reauthenticationError == nil ? 0 : 1
            }
            gauges[Series(.draining, ["peer": peer.name])] = Double(peer.drainingTunnels)
            counters[Series(.reauthentications, ["peer": peer.name])] = peer.reauthentications
            counters[Series(.bytes, ["peer": peer.name, "direction": "sent"])] = peer.bytesSent
            counters[Series(.bytes, ["peer": peer.name, "direction": "received"])] = peer.bytesReceived
        }
        for failure in snapshot.handshakeFailures {
            counters[Series(.handshakeFailures, ["peer": failure.peer, "reason": failure.reason]), default: 0] += failure.count
        }
        for stream in snapshot.streams {
            let series = Series(.streams, ["peer": stream.peer, "service": stream.service, "result": stream.result])
            counters[series, default: 0] += stream.count
        }
        return (gauges, counters)
    }

    /// The balancer series a view's snapshot implies.
    static func values(_ snapshot: BalancerView.Snapshot) -> (gauges: [Series: Double], counters: [Series: UInt64]) {
        var gauges: [Series: Double] = [:]
        var counters: [Series: UInt64] = [:]
        for backend in snapshot.backends {
            let labels: KeyValuePairs = ["balancer": backend.balancer, "node": backend.node]
            gauges[Series(.backendUp, labels)] = backend.healthy ? 1 : 0
            gauges[Series(.backendRole, labels)] =
                switch backend.role {
                case "primary": 1
                case "standby": 0
                default: -1
                }
            if let lag = backend.lagSeconds {
                gauges[Series(.backendLag, labels)] = lag
            }
            if let role = backend.patroniRole {
                gauges[Series(.backendPatroniRole, ["balancer": backend.balancer, "node": backend.node, "role": role])] = 1
            }
            if let state = backend.patroniState {
                gauges[Series(.backendPatroniRunning, labels)] = state == "running" ? 1 : 0
            }
        }
        for (route, count) in snapshot.activeConnections {
            let labels: KeyValuePairs = ["balancer": route.balancer, "listener": route.listener.rawValue, "node": route.node]
            gauges[Series(.balancerConnectionsActive, labels)] = Double(count)
        }
        for (key, count) in snapshot.outcomes {
            let series = Series(
                .balancerConnections,
                [
                    "balancer": key.balancer, "listener": key.listener.rawValue, "node": key.node, "result": key.result.rawValue,
                ]
            )
            counters[series] = count
        }
        return (gauges, counters)
    }

    private func update(_ exported: inout Exported, gauges: [Series: Double], counters: [Series: UInt64]) {
        for (series, value) in gauges {
            let gauge =
                exported.gauges[series]
                ?? self.registry.makeGauge(name: series.family.rawValue, labels: series.pairs, help: series.family.help)
            gauge.set(value)
            exported.gauges[series] = gauge
        }
        for (series, gauge) in exported.gauges where gauges[series] == nil {
            self.registry.unregisterGauge(gauge)
            exported.gauges[series] = nil
        }

        for (series, value) in counters {
            let entry = exported.counters[series]
            let counter =
                entry?.counter
                ?? self.registry.makeCounter(name: series.family.rawValue, labels: series.pairs, help: series.family.help)
            // A source count below the last one means the source started over; all of it is new.
            let last = entry?.at ?? 0
            let delta = value >= last ? value - last : value
            if delta > 0 { counter.increment(by: Int64(clamping: delta)) }
            exported.counters[series] = (counter, value)
        }
        for (series, entry) in exported.counters where counters[series] == nil {
            self.registry.unregisterCounter(entry.counter)
            exported.counters[series] = nil
        }
    }
}
