import Foundation

/// A tunnel reached the hard end of what authenticated it without a fresh tunnel to take over, and
/// was closed (its streams reset): the one case rotation exists to avoid, so it says what to do.
public struct ReauthenticationDeadlineError: Error, CustomStringConvertible {
    public enum Reason: Sendable {
        /// The earliest-expiring certificate of either chain ended.
        case certificateExpired(notAfter: Date)
        /// A reload took a CA certificate that verified the peer's chain out of `tls.ca`, and the
        /// tunnel's drain time (`tunnel.shutdown_grace`) after it ran out.
        case authorityRemoved(reloadedAt: Date)
    }

    public var peer: String
    public var reason: Reason

    public var description: String {
        switch self.reason {
        case .certificateExpired(let notAfter):
            "the certificates that authenticated the tunnel expired at \(Self.text(notAfter)) and no fresh tunnel "
                + "could be made with newer ones; give \(self.peer) (or this node) a new certificate and reload"
        case .authorityRemoved(let reloadedAt):
            "the reload of \(Self.text(reloadedAt)) took the CA that verified \(self.peer)'s certificate out of tls.ca "
                + "and no fresh tunnel could be made within tunnel.shutdown_grace; give \(self.peer) a certificate "
                + "from a CA in tls.ca"
        }
    }

    private static func text(_ date: Date) -> String { ISO8601DateFormatter().string(from: date) }
}
