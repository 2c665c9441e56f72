import Foundation
import MeshConfig

/// Reads Patroni's REST API answers (as Patroni 3.0.2 writes them) into a `PatroniState`.
/// `GET /patroni` is this node's live view: PostgreSQL's state and whether management is paused;
/// it does not name the member. `GET /cluster` is the DCS's view: every member's role and the
/// leader. This node is the member whose `api_url` is the address meshd asked, or, failing that,
/// the member named like the mesh node.
enum PatroniAnswer {
    struct Node: Decodable {
        var state: String
        var pause: Bool?
    }

    struct Cluster: Decodable {
        struct Member: Decodable {
            var name: String
            var role: String
            var api_url: String?
        }
        var members: [Member]
        var pause: Bool?
    }

    /// `node`: the body of `GET /patroni`; `cluster`: the body of `GET /cluster`, nil when it did
    /// not answer (the role is then `unknown` and the leader nil, the state still Patroni's).
    static func state(node: Data, cluster: Data?, api: Endpoint, meshNode: String) throws -> PatroniState {
        let own = try JSONDecoder().decode(Node.self, from: node)
        var state = PatroniState(role: .unknown, postgres: own.state, paused: own.pause ?? false)
        guard let cluster, let members = try? JSONDecoder().decode(Cluster.self, from: cluster) else { return state }
        state.paused = state.paused || (members.pause ?? false)
        state.leader = members.members.first { $0.role == "leader" || $0.role == "standby_leader" }?.name
        let me =
            members.members.first { $0.api_url.flatMap(Self.authority) == Self.authority(of: api) }
            ?? members.members.first { $0.name == meshNode }
        state.role = me.flatMap { PatroniState.Role(rawValue: $0.role) } ?? .unknown
        return state
    }

    /// `host:port` of an `api_url` such as `http://127.0.0.1:8008/patroni`.
    private static func authority(_ url: String) -> String? {
        guard let components = URLComponents(string: url), let host = components.host else { return nil }
        return "\(host):\(components.port ?? 80)"
    }

    private static func authority(of api: Endpoint) -> String? {
        guard case .tcp(let host, let port) = api else { return nil }
        return "\(host):\(port)"
    }
}
