import Logging
import MeshConfig
import NIOConcurrencyHelpers
import NIOCore
import NIOHTTP1
import NIOPosix

/// Serves `GET /metrics` on mesh.json's `"metrics"` address for a Prometheus server to scrape, with
/// the control socket's HTTP handler. Nothing else is served there, and anyone who can connect may
/// read it (TCP has no `SO_PEERCRED`), so the address belongs on loopback or a private interface.
public final class MetricsServer: Sendable {
    public let endpoint: Endpoint
    private let metrics: MeshMetrics
    private let group: EventLoopGroup
    private let logger: Logger
    private let idleTimeout: TimeAmount
    private let channel = NIOLockedValueBox<Channel?>(nil)

    public init(
        endpoint: Endpoint,
        metrics: MeshMetrics,
        group: EventLoopGroup,
        logger: Logger,
        idleTimeout: Duration = .seconds(60)
    ) {
        self.endpoint = endpoint
        self.metrics = metrics
        self.group = group
        self.logger = logger
        self.idleTimeout = TimeAmount(idleTimeout)
    }

    /// Where the listener is bound (the real port when the endpoint asked for port 0).
    public var localAddress: SocketAddress? {
        self.channel.withLockedValue { $0?.localAddress }
    }

    /// Binds the address and starts answering. Throws `MetricsListenError` naming the address.
    public func start() async throws {
        let metrics = self.metrics
        let idleTimeout = self.idleTimeout
        let bootstrap = ServerBootstrap(group: self.group)
            .serverChannelOption(.backlog, value: 64)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(IdleStateHandler(readTimeout: idleTimeout))
                    try channel.pipeline.syncOperations.configureHTTPServerPipeline(withErrorHandling: true)
                    try channel.pipeline.syncOperations.addHandler(
                        ControlHTTPHandler(
                            respond: { method, uri, _ in Self.respond(method: method, uri: uri, metrics: metrics) },
                            refusal: nil
                        )
                    )
                }
            }
        let channel: Channel
        do {
            switch self.endpoint {
            case .tcp(let host, let port):
                channel = try await bootstrap.bind(host: host, port: port).get()
            case .unix(let path):
                channel = try await bootstrap.bind(unixDomainSocketPath: path, cleanupExistingSocketFile: true).get()
            }
        } catch {
            throw MetricsListenError(endpoint: self.endpoint, underlying: error)
        }
        self.channel.withLockedValue { $0 = channel }
        self.logger.info("metrics: serving GET /metrics on \(self.endpoint)")
    }

    /// Stops accepting; requests in progress may finish.
    public func stop() async {
        guard
            let channel = self.channel.withLockedValue({ channel in
                defer { channel = nil }
                return channel
            })
        else {
            return
        }
        try? await channel.close()
    }

    /// The one route of this listener.
    static func respond(method: HTTPMethod, uri: String, metrics: MeshMetrics) -> ControlResponse {
        let path = uri.split(separator: "?", maxSplits: 1, omittingEmptySubsequences: false).first.map(String.init) ?? uri
        guard path == "/metrics" else {
            return .error(.notFound, "no endpoint \(path) here: this listener serves only GET /metrics")
        }
        guard method == .GET else {
            var response = ControlResponse.error(.methodNotAllowed, "/metrics takes GET, not \(method.rawValue)")
            response.headers.append(("Allow", "GET"))
            return response
        }
        return metrics.response()
    }
}

/// The metrics listener could not be opened: names the address and what to check.
public struct MetricsListenError: Error, CustomStringConvertible {
    public var endpoint: Endpoint
    public var underlying: Error
    public var description: String {
        "cannot listen for metrics on \(self.endpoint) (mesh.json \"metrics\"): \(self.underlying) — is another process using it?"
    }
}
