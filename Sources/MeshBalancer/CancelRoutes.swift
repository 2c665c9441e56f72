import Logging
import NIOConcurrencyHelpers
import NIOCore

/// Which node issued each cancel key, for the live sessions of one agent: a CancelRequest at the
/// front door names only the key, and must reach the PostgreSQL that handed it out. A session's key
/// is added when its BackendKeyData goes by (see `watcher(session:route:)`) and removed when the
/// session ends (`forget(session:)`), so the map holds live sessions only. Thread-safe: sessions
/// live on many loops.
public final class CancelRoutes: Sendable {
    /// Names one session for as long as it lives (`ObjectIdentifier` of its owner).
    public typealias Session = ObjectIdentifier

    private struct Entry {
        var route: FrontDoorHandler.Route
        /// Which session registered the key, so an ending session never removes another's entry.
        var session: Session
    }

    private struct Table {
        var byKey: [BackendKeyData: Entry] = [:]
        var keyOf: [Session: BackendKeyData] = [:]
    }

    private let table = NIOLockedValueBox(Table())
    private let logger: Logger

    public init(logger: Logger) {
        self.logger = logger
    }

    /// The route of the live session that `key` belongs to; nil for a key no live session has, which
    /// the caller drops without an answer, as PostgreSQL silently ignores a cancel that matches nothing.
    public func route(for key: BackendKeyData) -> FrontDoorHandler.Route? {
        self.table.withLockedValue { $0.byKey[key]?.route }
    }

    /// Live sessions with a known key.
    public var count: Int {
        self.table.withLockedValue { $0.byKey.count }
    }

    /// A watcher to add to the client channel of `session`, routed to `route`, before the handler
    /// that writes the server's bytes to it: it registers the session's key when the server sends it.
    public func watcher(session: Session, route: FrontDoorHandler.Route) -> BackendKeyWatcher {
        let logger = self.logger
        return BackendKeyWatcher { outcome in
            switch outcome {
            case .keyData(let key):
                self.register(key, route: route, session: session)
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
    func register(_ key: BackendKeyData, route: FrontDoorHandler.Route, session: Session) {
        self.table.withLockedValue { table in
            table.byKey[key] = Entry(route: route, session: session)
            table.keyOf[session] = key
        }
    }

    /// Forgets the key of a session that ended, unless a newer session holds the same key.
    public func forget(session: Session) {
        self.table.withLockedValue { table in
            guard let key = table.keyOf.removeValue(forKey: session) else { return }
            if table.byKey[key]?.session == session { table.byKey[key] = nil }
        }
    }
}
