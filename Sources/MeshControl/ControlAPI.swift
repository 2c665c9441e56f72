import Foundation
import MeshControlModel
import MeshTunnel
import NIOConcurrencyHelpers
import NIOCore
import NIOHTTP1

/// The control API's endpoints: maps a method and a path to a JSON response, reading from the
/// agent's data source and facts. Knows nothing of sockets, so it can be read on its own.
///
/// - `GET  /v1/status`              → `AgentStatus`
/// - `GET  /v1/peers`               → `[PeerInfo]`
/// - `GET  /v1/peers/{name}`        → `PeerInfo`
/// - `GET  /v1/services`            → `[ServiceInfo]`
/// - `GET  /v1/backends`            → `[BackendInfo]`
/// - `POST /v1/peers/{name}/ping?count=N` → `PingReport` (N in 1...100, default 1)
/// - `POST /v1/reload`              → `ReloadOutcome` (200 whether or not the new config was taken)
/// - `POST /v1/reload?dry_run=true[&file=NAME]` → `ReloadOutcome` with `changes`: what a reload of
///   the agent's config file (no body) or of the mesh.json in the body would change; applies nothing
/// - `GET  /metrics`                → Prometheus text (`MeshMetrics`), when the agent has metrics
/// - anything else → `ControlErrorBody` with 404 or 405.
public final class ControlAPI: Sendable {
    private let source: any ControlDataSource
    private let facts: NIOLockedValueBox<AgentFacts>
    private let now: @Sendable () -> Date
    private let reloadHandler = NIOLockedValueBox<(@Sendable () async -> ReloadOutcome)?>(nil)
    private let dryRunHandler = NIOLockedValueBox<(@Sendable (DryRunRequest) async -> ReloadOutcome)?>(nil)
    private let metrics: MeshMetrics?
    private let balancers: BalancerView?

    /// `balancers`: the rows of `/v1/backends`; without it that list is empty.
    public init(
        source: any ControlDataSource,
        facts: AgentFacts,
        metrics: MeshMetrics? = nil,
        balancers: BalancerView? = nil,
        now: @escaping @Sendable () -> Date = { Date() }
    ) {
        self.source = source
        self.facts = NIOLockedValueBox(facts)
        self.metrics = metrics
        self.balancers = balancers
        self.now = now
    }

    /// What `POST /v1/reload` runs: re-read the config and certificates and apply them.
    public func onReload(_ handler: @escaping @Sendable () async -> ReloadOutcome) {
        self.reloadHandler.withLockedValue { $0 = handler }
    }

    /// What `POST /v1/reload?dry_run=true` runs: validate and plan a config, apply nothing.
    public func onDryRun(_ handler: @escaping @Sendable (DryRunRequest) async -> ReloadOutcome) {
        self.dryRunHandler.withLockedValue { $0 = handler }
    }

    /// The largest request body taken: a dry run's mesh.json (a few hundred nodes fit many times over).
    public static let maxBodyBytes = 1 << 20

    /// Replaces what `/v1/status` and `/v1/services` report, e.g. after a reload.
    public func update(_ body: @Sendable (inout AgentFacts) -> Void) {
        self.facts.withLockedValue { body(&$0) }
    }

    public func respond(method: HTTPMethod, uri: String, body: ByteBuffer = ByteBuffer()) async -> ControlResponse {
        let (path, query) = Self.split(uri)
        let segments = path.split(separator: "/", omittingEmptySubsequences: true).map {
            $0.removingPercentEncoding ?? String($0)
        }
        switch Route(segments) {
        case .status where method == .GET:
            return .json(self.status())
        case .peers where method == .GET:
            return .json(self.source.peerStatuses().map(PeerInfo.init))
        case .peer(let name) where method == .GET:
            guard let peer = self.source.peerStatuses().first(where: { $0.name == name }) else {
                return self.unknownPeer(name)
            }
            return .json(PeerInfo(peer))
        case .services where method == .GET:
            return .json(self.facts.withLockedValue { $0.services })
        case .backends where method == .GET:
            return .json(self.balancers?.backends() ?? [])
        case .ping(let name) where method == .POST:
            return await self.ping(peer: name, query: query)
        case .reload where method == .POST:
            return await self.reload(query: query, body: body)
        case .metrics where method == .GET:
            guard let metrics = self.metrics else {
                return .error(.notFound, "this agent serves no metrics")
            }
            return metrics.response()
        case .status, .peers, .peer, .services, .backends, .metrics:
            return self.methodNotAllowed(method, path, allow: "GET")
        case .ping, .reload:
            return self.methodNotAllowed(method, path, allow: "POST")
        case .none:
            return .error(.notFound, "no endpoint \(path); see /v1/status, /v1/peers, /v1/services, /v1/backends, /metrics")
        }
    }

    /// The endpoints by path, whatever the method.
    private enum Route {
        case status, peers, services, backends, reload, metrics
        case peer(String)
        case ping(String)
        case none

        init(_ segments: [String]) {
            if segments == ["metrics"] {
                self = .metrics
                return
            }
            guard segments.first == "v1" else {
                self = .none
                return
            }
            switch (segments.count, segments.dropFirst().first) {
            case (2, "status"): self = .status
            case (2, "peers"): self = .peers
            case (2, "services"): self = .services
            case (2, "backends"): self = .backends
            case (2, "reload"): self = .reload
            case (3, "peers"): self = .peer(segments[2])
            case (4, "peers") where segments[3] == "ping": self = .ping(segments[2])
            default: self = .none
            }
        }
    }

    // MARK: Endpoints

    private func status() -> AgentStatus {
        let facts = self.facts.withLockedValue { $0 }
        let peers = self.source.peerStatuses()
        let now = self.now()
        return AgentStatus(
            node: self.source.name,
            mesh: facts.mesh,
            version: facts.version,
            uptimeSeconds: max(0, Int(now.timeIntervalSince(facts.startedAt))),
            configFile: facts.configFile,
            configSHA256: facts.configSHA256,
            lastReload: facts.lastReload,
            peersUp: peers.filter { $0.state == .up }.count,
            peersTotal: peers.count,
            certificateNotAfter: facts.certificateNotAfter,
            certificateDaysLeft: facts.certificateNotAfter.map { AgentStatus.daysLeft(until: $0, now: now) }
        )
    }

    /// A reload, or with `dry_run=true` its plan; only a dry run takes a body (the candidate mesh.json).
    private func reload(query: [String: String], body: ByteBuffer) async -> ControlResponse {
        switch query["dry_run"] {
        case nil:
            guard body.readableBytes == 0, query["file"] == nil else {
                return .error(
                    .badRequest,
                    "a reload reads the agent's own config file; send a mesh.json (and file=) only with dry_run=true"
                )
            }
            guard let handler = self.reloadHandler.withLockedValue({ $0 }) else {
                return .error(.serviceUnavailable, "this agent cannot reload")
            }
            return .json(await handler())
        case "true", "1":
            guard let handler = self.dryRunHandler.withLockedValue({ $0 }) else {
                return .error(.serviceUnavailable, "this agent cannot plan a reload")
            }
            let document = body.readableBytes > 0 ? Data(body.readableBytesView) : nil
            return .json(await handler(DryRunRequest(document: document, file: query["file"])))
        case let other?:
            return .error(.badRequest, "dry_run must be true or 1, not \"\(other)\"")
        }
    }

    private func ping(peer name: String, query: [String: String]) async -> ControlResponse {
        var count = 1
        if let text = query["count"] {
            guard let value = Int(text), (1...PingReport.maxCount).contains(value) else {
                return .error(.badRequest, "count must be a whole number from 1 to \(PingReport.maxCount), not \"\(text)\"")
            }
            count = value
        }
        guard let status = self.source.peerStatuses().first(where: { $0.name == name }) else {
            return self.unknownPeer(name)
        }
        var samples: [Double] = []
        for index in 0..<count {
            if index > 0 { try? await Task.sleep(for: PingReport.interval) }
            switch await self.onePing(name) {
            case .success(let rtt):
                samples.append(Double(rtt.components.seconds) + Double(rtt.components.attoseconds) / 1e18)
            case .failure(.timedOut):
                return .error(
                    .gatewayTimeout,
                    "no PING answer from \(name) within \(PingReport.timeout) (after \(samples.count) of \(count) round trips)"
                )
            case .failure(.failed(let error)):
                let state = self.source.peerStatuses().first(where: { $0.name == name }) ?? status
                let why = state.lastError.map { ", last error: \($0)" } ?? ""
                return .error(
                    .serviceUnavailable,
                    "cannot ping \(name): \(error) (state \(state.state.rawValue)\(why))"
                )
            }
        }
        return .json(PingReport(peer: name, samplesSeconds: samples))
    }

    private enum PingFailure: Error {
        case timedOut
        case failed(any Error)
    }

    /// One PING raced against `pingTimeout`; the loser is cancelled.
    private func onePing(_ peer: String) async -> Result<Duration, PingFailure> {
        let source = self.source
        return await withTaskGroup(of: Result<Duration, PingFailure>?.self) { group in
            group.addTask {
                do { return .success(try await source.ping(peer: peer)) } catch { return .failure(.failed(error)) }
            }
            group.addTask {
                do { try await Task.sleep(for: PingReport.timeout) } catch { return nil }
                return .failure(.timedOut)
            }
            var outcome: Result<Duration, PingFailure> = .failure(.timedOut)
            for await result in group {
                if let result {
                    outcome = result
                    break
                }
            }
            group.cancelAll()
            return outcome
        }
    }

    // MARK: Errors

    private func unknownPeer(_ name: String) -> ControlResponse {
        let names = self.source.peerStatuses().map(\.name).joined(separator: ", ")
        return .error(.notFound, "no peer named \"\(name)\" (peers of \(self.source.name): \(names.isEmpty ? "none" : names))")
    }

    private func methodNotAllowed(_ method: HTTPMethod, _ path: String, allow: String) -> ControlResponse {
        var response = ControlResponse.error(.methodNotAllowed, "\(path) takes \(allow), not \(method.rawValue)")
        response.headers.append(("Allow", allow))
        return response
    }

    /// Splits `/v1/x?a=1&b=2` into its raw path and its query items (percent-decoded).
    static func split(_ uri: String) -> (path: String, query: [String: String]) {
        guard let mark = uri.firstIndex(of: "?") else { return (uri, [:]) }
        let path = String(uri[..<mark])
        var query: [String: String] = [:]
        for item in uri[uri.index(after: mark)...].split(separator: "&") {
            let pair = item.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            let key = String(pair[0]).removingPercentEncoding ?? String(pair[0])
            let value = pair.count > 1 ? (String(pair[1]).removingPercentEncoding ?? String(pair[1])) : ""
            query[key] = value
        }
        return (path, query)
    }
}
