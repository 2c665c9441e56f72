import Foundation

/// `meshctl status` for a person: one labelled line per fact, warnings in words and colour.
public enum StatusText {
    /// `peers` are optional: with them, the peers line names those not up.
    public static func render(_ status: AgentStatus, peers: [PeerInfo] = [], now: Date, style: TextStyle) -> String {
        var lines: [(String, String)] = []
        lines.append(("node", style.paint(status.node, .bold)))
        lines.append(("mesh", status.mesh))
        lines.append(("version", status.version))
        let started = now.addingTimeInterval(-Double(status.uptimeSeconds))
        lines.append(("uptime", "\(HumanUnits.span(seconds: status.uptimeSeconds)) (since \(HumanUnits.date(started)))"))
        lines.append(("config", status.configFile))
        lines.append(("config sha256", status.configSHA256))
        lines.append(("last load", self.reload(status.lastReload, now: now, style: style)))
        lines.append(("peers", self.peers(status, peers: peers, style: style)))
        lines.append(("certificate", self.certificate(status, now: now, style: style)))
        let width = lines.map(\.0.count).max() ?? 0
        return lines.map { label, value in
            label + String(repeating: " ", count: width - label.count) + "  " + value
        }.joined(separator: "\n") + "\n"
    }

    private static func reload(_ outcome: ReloadOutcome, now: Date, style: TextStyle) -> String {
        let when = "\(HumanUnits.date(outcome.at)) (\(HumanUnits.ago(outcome.at, now: now)))"
        if outcome.ok { return style.paint("ok", .good) + ", " + when }
        return style.paint("failed", .bad) + ", " + when + ": " + (outcome.error ?? "no reason given")
    }

    private static func peers(_ status: AgentStatus, peers: [PeerInfo], style: TextStyle) -> String {
        let summary = "\(status.peersUp)/\(status.peersTotal) up"
        if status.peersUp == status.peersTotal { return style.paint(summary, .good) }
        let notUp = peers.filter { !$0.isUp }.map { "\($0.name) \($0.state)" }
        let detail = notUp.isEmpty ? "" : " (" + notUp.joined(separator: ", ") + ")"
        return style.paint(summary, .bad) + detail
    }

    private static func certificate(_ status: AgentStatus, now: Date, style: TextStyle) -> String {
        guard let notAfter = status.certificateNotAfter else { return style.paint("expiry unknown", .warning) }
        let days = status.certificateDaysLeft ?? AgentStatus.daysLeft(until: notAfter, now: now)
        let date = HumanUnits.date(notAfter)
        if notAfter <= now {
            return style.paint("EXPIRED \(date) (\(HumanUnits.ago(notAfter, now: now)))", .bad)
                + " — issue a new one: meshctl pki issue \(status.node)"
        }
        let left = "expires \(date) (\(days) day\(days == 1 ? "" : "s") left)"
        if days < AgentStatus.certificateWarningDays {
            return style.paint(left, .warning) + " — renew soon: meshctl pki issue \(status.node)"
        }
        return left
    }
}
