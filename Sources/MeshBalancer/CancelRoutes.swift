import Logging
import NIOConcurrencyHelpers
import NIOCore

/// Which node issued each cancel key, for the live sessions of one agent: a CancelRequest at the
/// front door names only the key, and must reach the PostgreSQL that handed it out. A session's key
/// is added when its BackendKeyData goes by (see `watcher(for:route:)`) and removed when its client
/// connection closes, so the map holds live sessions only. Thread-safe: sessions live on many loops.
public final class CancelRoutes: Sendable {
    private struct Entry {
        var route: FrontDoorHandler.Route
        /// Which session registered the key, so a closing session never removes another's entry.
        var session: ObjectIdentifier
    }

    private let entries = NIOLockedValueBox<[BackendKeyData: Entry]>([:])
    private let logger: Logger

    public init(logger: Logger) {
        self.logger = logger
    }

    /// The route of the live session that `key` belongs to; nil for a key no live session has, which
    /// the caller drops without an answer, as PostgreSQL silently ignores a cancel that matches nothing.
    public func route(for key: BackendKeyData) -> FrontDoorHandler.Route? {
        self.entries.withLockedValue { $0[key]?.route }
    }

    /// Live sessions with a known key.
    public var count: Int {
        self.entries.withLockedValue { $0.count }
    }

    /// A watcher to add to `channel` (the client side of a session routed to `route`) before the
    /// splice, i.e. in the front door's `bridge` before `MeshNode.bridge`: it registers the session's
    /// key when the server sends it, and the key is removed when `channel` closes.
    public func watcher(for channel: Channel, route: FrontDoorHandler.Route) -> BackendKeyWatcher {
        let session = ObjectIdentifier(channel)
        let logger = self.logger
        return BackendKeyWatcher { outcome in
            switch outcome {
            case .keyData(let key):
                self.register(key, route: route, session: session)
                channel.closeFuture.whenComplete { _ in self.unregister(key, session: session) }
            case .readyWithoutKey:
                logger.debug("\(route.service)@\(route.node) sent no cancel key; this session cannot be cancelled")
            case .serverError, .needMoreData:
                break
            case .gaveUp(let reason):
                logger.info("cannot learn the cancel key of a session on \(route.service)@\(route.node): \(reason)")
            }
        }
    }

    /// Records the key of a live session. A key already held by another live session (a collision of
    /// process id and random secret, vanishingly rare) now routes to the newer one.
    func register(_ key: BackendKeyData, route: FrontDoorHandler.Route, session: ObjectIdentifier) {
        self.entries.withLockedValue { $0[key] = Entry(route: route, session: session) }
    }

    /// Forgets the key if `session` still owns it.
    func unregister(_ key: BackendKeyData, session: ObjectIdentifier) {
        self.entries.withLockedValue { entries in
            if entries[key]?.session == session { entries[key] = nil }
        }
    }
}
