import MeshTLS
import NIOConcurrencyHelpers

/// Counts the tunnel events that have no home in a single peer's counters: handshake failures by
/// reason and stream outcomes by service. Read by the metrics endpoint; label values are bounded
/// (declared names, `unknown`, and the fixed reason and result sets).
public final class TunnelEvents: Sendable {
    /// How a stream ended up.
    public enum StreamResult: String, Sendable, CaseIterable {
        /// Accepted by the serving node and spliced.
        case opened
        /// Refused by the serving node (access, unknown service, limit).
        case refused
        /// Failed for another reason (tunnel down, target unreachable).
        case failed
    }

    public struct HandshakeKey: Hashable, Sendable {
        public var peer: String
        public var reason: String
    }

    public struct StreamKey: Hashable, Sendable {
        public var peer: String
        public var service: String
        public var result: StreamResult
    }

    private struct State {
        var handshakeFailures: [HandshakeKey: UInt64] = [:]
        var streams: [StreamKey: UInt64] = [:]
        var declaredPeers: Set<String>
        var declaredServices: Set<String>
    }

    private let state: NIOLockedValueBox<State>

    public init(peers: Set<String>, services: Set<String>) {
        self.state = NIOLockedValueBox(State(declaredPeers: peers, declaredServices: services))
    }

    /// The names that may appear as label values; replaced on reload.
    func declare(peers: Set<String>, services: Set<String>) {
        self.state.withLockedValue {
            $0.declaredPeers = peers
            $0.declaredServices = services
        }
    }

    func handshakeFailed(peer: String?, error: Error?) {
        let reason = (error as? TLSHandshakeError)?.reason.rawValue ?? HandshakeFailureReason.other.rawValue
        self.state.withLockedValue { state in
            let key = HandshakeKey(peer: Self.label(peer, in: state.declaredPeers), reason: reason)
            state.handshakeFailures[key, default: 0] += 1
        }
    }

    func stream(peer: String, service: String, result: StreamResult) {
        self.state.withLockedValue { state in
            let key = StreamKey(
                peer: Self.label(peer, in: state.declaredPeers),
                service: Self.label(service, in: state.declaredServices),
                result: result
            )
            state.streams[key, default: 0] += 1
        }
    }

    public func handshakeFailures() -> [HandshakeKey: UInt64] {
        self.state.withLockedValue { $0.handshakeFailures }
    }

    public func streams() -> [StreamKey: UInt64] {
        self.state.withLockedValue { $0.streams }
    }

    private static func label(_ name: String?, in declared: Set<String>) -> String {
        guard let name, declared.contains(name) else { return "unknown" }
        return name
    }
}
