import Foundation

/// `meshctl peers` for a person: one aligned row per peer, human units, colour by state.
public enum PeersText {
    public static let headers = [
        "NAME", "ADDRESS", "STATE", "SINCE", "RTT", "STREAMS", "TX", "RX", "LAST ERROR", "AUTHENTICATED", "AUTH EXPIRES",
        "CERT EXPIRES",
    ]
    /// Longer errors are cut here (with `…`); `--json` has them whole.
    public static let maxErrorLength = 48

    public static func render(_ peers: [PeerInfo], now: Date, style: TextStyle) -> String {
        guard !peers.isEmpty else { return "no peers: this node is the only one in mesh.json\n" }
        var table = TextTable(headers: self.headers)
        for peer in peers {
            table.append([
                .init(peer.name),
                .init(peer.address),
                .init(self.stateText(peer), self.paint(state: peer.state)),
                .init(HumanUnits.ago(peer.since, now: now)),
                peer.rttSeconds.map { .init(HumanUnits.rtt(seconds: $0)) } ?? .init("-", .dim),
                // active now / opened since the agent started
                .init("\(peer.streamsActive)/\(peer.streamsTotal)"),
                .init(HumanUnits.bytes(peer.bytesSent)),
                .init(HumanUnits.bytes(peer.bytesReceived)),
                // An up tunnel's last error is history (often "not dialed yet"); --json keeps it.
                // Not so a failed re-authentication: that tunnel closes at AUTH EXPIRES.
                (peer.isUp ? peer.reauthenticationError : peer.lastError).map { .init(self.shorten($0), .bad) }
                    ?? .init("-", .dim),
                peer.authenticatedAt.map { .init(HumanUnits.ago($0, now: now)) } ?? .init("-", .dim),
                peer.isUp
                    ? peer.credentialsNotAfter.map { self.credentialsCell($0, peer: peer, now: now) } ?? .init("-", .dim)
                    : .init("-", .dim),
                peer.certificateNotAfter.map { self.expiryCell($0, now: now) } ?? .init("-", .dim),
            ])
        }
        return table.render(style)
    }

    static func paint(state: String) -> TextStyle.Paint {
        switch state {
        case "up": .good
        case "down": .bad
        default: .warning
        }
    }

    /// `up`, or `up +1 draining` while older tunnels finish their streams after a renewal.
    public static func stateText(_ peer: PeerInfo) -> String {
        guard let draining = peer.drainingTunnels, draining > 0 else { return peer.state }
        return "\(peer.state) +\(draining) draining"
    }

    /// Red once nothing renews the tunnel before it: it will be closed then.
    static func credentialsCell(_ notAfter: Date, peer: PeerInfo, now: Date) -> TextTable.Cell {
        let stuck = peer.reauthenticateAt == nil || peer.reauthenticationError != nil
        return .init(HumanUnits.expiry(notAfter, now: now), stuck || notAfter <= now ? .bad : nil)
    }

    static func expiryCell(_ notAfter: Date, now: Date) -> TextTable.Cell {
        let days = AgentStatus.daysLeft(until: notAfter, now: now)
        let paint: TextStyle.Paint? = notAfter <= now ? .bad : days < AgentStatus.certificateWarningDays ? .warning : nil
        return .init(HumanUnits.expiry(notAfter, now: now), paint)
    }

    /// One line, at most `maxErrorLength` characters.
    static func shorten(_ text: String) -> String {
        let line = text.replacingOccurrences(of: "\n", with: " ")
        guard line.count > self.maxErrorLength else { return line }
        return String(line.prefix(self.maxErrorLength - 1)) + "…"
    }
}
