import Foundation

/// Numbers and times as an operator reads them: `1.2 GiB`, `3m ago`, `0.4ms`, `2h 5m`, dates in UTC.
public enum HumanUnits {
    /// Binary units; one decimal below 10 (`1.2 GiB`), none above (`15 MiB`).
    public static func bytes(_ count: UInt64) -> String {
        if count < 1024 { return "\(count) B" }
        let units = ["KiB", "MiB", "GiB", "TiB", "PiB", "EiB"]
        var value = Double(count) / 1024
        var unit = 0
        while value >= 1024, unit < units.count - 1 {
            value /= 1024
            unit += 1
        }
        return String(format: value < 10 ? "%.1f" : "%.0f", value) + " " + units[unit]
    }

    /// A round trip: `0.06ms`, `0.4ms`, `12.5ms`, `250ms`, `1.25s`.
    public static func rtt(seconds: Double) -> String {
        let milliseconds = seconds * 1000
        switch milliseconds {
        case ..<0.1: return String(format: "%.2fms", milliseconds)
        case ..<100: return String(format: "%.1fms", milliseconds)
        case ..<1000: return String(format: "%.0fms", milliseconds)
        default: return String(format: "%.2fs", seconds)
        }
    }

    /// A span in its two largest units: `45s`, `3m 12s`, `2h 5m`, `4d 3h`.
    public static func span(seconds: Int) -> String {
        let seconds = max(0, seconds)
        let (days, hours, minutes, rest) = (seconds / 86_400, seconds / 3600 % 24, seconds / 60 % 60, seconds % 60)
        if days > 0 { return hours > 0 ? "\(days)d \(hours)h" : "\(days)d" }
        if hours > 0 { return minutes > 0 ? "\(hours)h \(minutes)m" : "\(hours)h" }
        if minutes > 0 { return rest > 0 ? "\(minutes)m \(rest)s" : "\(minutes)m" }
        return "\(rest)s"
    }

    /// How long ago, in its largest unit: `just now`, `42s ago`, `3m ago`, `5h ago`, `2d ago`.
    public static func ago(_ date: Date, now: Date) -> String {
        self.ago(wholeSeconds: Int(now.timeIntervalSince(date).rounded(.down)))
    }

    /// The age of something that comes every second or so, e.g. a backend's last report: tenths
    /// below 10 s (`0.4s ago`, `3.2s ago`), then as `ago` (`42s ago`, `3m ago`).
    public static func age(seconds: Double) -> String {
        if seconds < 10 { return String(format: "%.1fs ago", max(0, seconds)) }
        return self.ago(wholeSeconds: Int(seconds.rounded(.down)))
    }

    /// A standby's replay lag: `0s` when caught up, `250ms`, `3.5s`, then `2m 5s`.
    public static func lag(seconds: Double) -> String {
        switch seconds {
        case ...0: return "0s"
        case ..<1: return self.rtt(seconds: seconds)
        case ..<60: return String(format: "%.1fs", seconds)
        default: return self.span(seconds: Int(seconds.rounded(.down)))
        }
    }

    private static func ago(wholeSeconds seconds: Int) -> String {
        switch seconds {
        case ..<1: return "just now"
        case ..<60: return "\(seconds)s ago"
        case ..<3600: return "\(seconds / 60)m ago"
        case ..<86_400: return "\(seconds / 3600)h ago"
        default: return "\(seconds / 86_400)d ago"
        }
    }

    /// Time to an expiry, in its largest unit: `in 89d`, `in 5h`, `expired 2d ago`.
    public static func expiry(_ date: Date, now: Date) -> String {
        let seconds = Int(date.timeIntervalSince(now).rounded(.down))
        if seconds <= 0 { return "expired " + self.ago(date, now: now) }
        switch seconds {
        case ..<60: return "in \(seconds)s"
        case ..<3600: return "in \(seconds / 60)m"
        case ..<86_400: return "in \(seconds / 3600)h"
        default: return "in \(seconds / 86_400)d"
        }
    }

    /// `2026-02-24 18:10:00 UTC`, the one date format of meshctl's human output.
    public static func date(_ date: Date) -> String {
        var seconds = time_t(date.timeIntervalSince1970.rounded(.down))
        var parts = tm()
        gmtime_r(&seconds, &parts)
        return String(
            format: "%04d-%02d-%02d %02d:%02d:%02d UTC",
            Int(parts.tm_year) + 1900,
            Int(parts.tm_mon) + 1,
            Int(parts.tm_mday),
            Int(parts.tm_hour),
            Int(parts.tm_min),
            Int(parts.tm_sec)
        )
    }
}
