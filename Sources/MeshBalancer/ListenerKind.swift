import NIOConcurrencyHelpers

/// Which of a balancer's two listeners a connection came in on.
public enum ListenerKind: String, Sendable, Hashable, CaseIterable {
    /// Read-write: always the primary.
    case rw
    /// Read-only: a healthy standby, or per `ro_fallback` the primary.
    case ro
}
