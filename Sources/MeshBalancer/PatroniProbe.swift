import Foundation
import MeshConfig
import MeshHTTPClient
import NIOCore
import NIOHTTP1

/// Asks this node's Patroni REST API, once per probe cycle, how Patroni sees the node:
/// `GET /patroni` and `GET /cluster` at once, each within `timeout` (below the probe interval, so
/// a hung Patroni never delays the next PostgreSQL report). Plain HTTP: the API is on this node;
/// other nodes reach it, if at all, through the mesh.
struct PatroniProbe: Sendable {
    var api: Endpoint
    var node: String
    var timeout: Duration
    var group: EventLoopGroup

    init?(settings: PostgresSettings, node: String, group: EventLoopGroup) {
        guard let api = settings.patroni?.api[node] else { return nil }
        self.api = api
        self.node = node
        self.timeout = settings.probeInterval * 4 / 5
        self.group = group
    }

    func ask() async -> PatroniStatus {
        async let cluster = self.get("/cluster")
        let node = await self.get("/patroni")
        let clusterBody = try? await cluster.get()
        switch node {
        case .success(let body):
            do {
                return .answered(try PatroniAnswer.state(node: body, cluster: clusterBody, api: self.api, meshNode: self.node))
            } catch {
                return .unanswered(error: "Patroni at \(self.api): GET /patroni: unreadable answer (\(error))")
            }
        case .failure(let error):
            return .unanswered(error: "Patroni at \(self.api): \(error.text)")
        }
    }

    struct Failure: Error {
        var text: String
    }

    private func get(_ path: String) async -> Result<Data, Failure> {
        guard case .tcp(let host, let port) = self.api else {
            return .failure(Failure(text: "not a TCP address"))
        }
        let exchange = HTTPExchange(target: .tcp(host: host, port: port), timeout: self.timeout, maxBodyBytes: 1 << 20, group: self.group)
        do throws(HTTPExchange.Failure) {
            let response = try await exchange.send(.GET, path, host: "\(self.api)")
            guard response.status == .ok else {
                return .failure(Failure(text: "GET \(path): HTTP \(response.status.code) \(response.status.reasonPhrase)"))
            }
            return .success(response.body)
        } catch {
            switch error {
            case .connect(let error):
                return .failure(Failure(text: HTTPExchange.reason(error)))
            case .timedOut:
                return .failure(Failure(text: "GET \(path): no answer within \(DurationText.format(self.timeout))"))
            case .failed(let error):
                return .failure(Failure(text: "GET \(path): \(error)"))
            }
        }
    }
}
