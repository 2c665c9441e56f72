/// Where read-only connections go when no standby is healthy.
public enum ReadFallback: String, Sendable, Equatable {
    /// Send them to the primary.
    case primary
    /// Refuse them.
    case none
}
