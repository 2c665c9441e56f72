import MeshBalancer
import NIOCore

/// A `FrontDoorSession` whose answers are the test's, in the shape of meshd's `BalancerSession`:
/// `route` picks (or refuses), `bridge` joins the channel to what the test stands in for the
/// tunnel (a bridge that throws is an unreachable node, answered 08006 as meshd does), `cancel`
/// hears CancelRequests.
public final class ScriptedSession: FrontDoorSession, Sendable {
    public typealias Route = FrontDoorHandler.Route

    private let channel: Channel
    private let route: @Sendable (StartupMessage) -> Result<Route, ErrorResponse>
    private let bridge: @Sendable (Channel, Route) throws -> Void
    private let cancelled: @Sendable (BackendKeyData) -> Void

    public init(
        channel: Channel,
        route: @escaping @Sendable (StartupMessage) -> Result<Route, ErrorResponse>,
        bridge: @escaping @Sendable (Channel, Route) throws -> Void = { _, _ in },
        cancel: @escaping @Sendable (BackendKeyData) -> Void = { _ in }
    ) {
        self.channel = channel
        self.route = route
        self.bridge = bridge
        self.cancelled = cancel
    }

    public func start(_ message: StartupMessage) -> Result<Route, ErrorResponse> {
        self.route(message).flatMap { route in
            do {
                try self.bridge(self.channel, route)
                return .success(route)
            } catch {
                return .failure(
                    ErrorResponse(
                        code: .connectionFailure,
                        message: "tunnelmesh: cannot reach \"\(route.service)\" on \(route.node): \(error)"
                    )
                )
            }
        }
    }

    public func cancel(_ key: BackendKeyData) {
        self.cancelled(key)
    }
}
