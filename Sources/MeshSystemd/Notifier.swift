import CSystemd
import Logging

#if canImport(Glibc)
import Glibc
#endif

/// Tells the service manager (the `NOTIFY_SOCKET` systemd gives a `Type=notify` unit) what the
/// agent is doing: ready, reloading, stopping, a status line, watchdog pings. Without
/// `NOTIFY_SOCKET` every call does nothing, so meshd runs the same outside systemd.
public struct Notifier: Sendable {
    /// True when a service manager is listening.
    public let isEnabled: Bool
    private let logger: Logger

    public init(logger: Logger) {
        self.isEnabled = getenv("NOTIFY_SOCKET") != nil
        self.logger = logger
    }

    /// `READY=1`: configuration loaded and every listener open.
    public func ready(status: String? = nil) {
        self.send(["READY=1"] + (status.map { ["STATUS=\(Self.oneLine($0))"] } ?? []))
    }

    /// `RELOADING=1` with `MONOTONIC_USEC=` (systemd 253 and later use the timestamp to tell this
    /// reload from an earlier one); follow it with `ready()` when the reload is over.
    public func reloading(status: String? = nil) {
        var fields = ["RELOADING=1", "MONOTONIC_USEC=\(Self.monotonicMicroseconds())"]
        if let status { fields.append("STATUS=\(Self.oneLine(status))") }
        self.send(fields)
    }

    /// `STOPPING=1`: shutdown has begun.
    public func stopping(status: String? = nil) {
        self.send(["STOPPING=1"] + (status.map { ["STATUS=\(Self.oneLine($0))"] } ?? []))
    }

    /// `STATUS=`: one line shown by `systemctl status`.
    public func status(_ text: String) {
        self.send(["STATUS=\(Self.oneLine(text))"])
    }

    /// `WATCHDOG=1`: the agent is alive (only the `Watchdog` should decide when to send it).
    public func watchdog() {
        self.send(["WATCHDOG=1"])
    }

    /// One datagram with all `fields` (systemd reads a message's assignments together).
    private func send(_ fields: [String]) {
        guard self.isEnabled else { return }
        let message = fields.joined(separator: "\n")
        let result = sd_notify(0, message)
        if result < 0 {
            self.logger.warning("sd_notify(\(fields.first ?? "")) failed: \(String(cString: strerror(-result)))")
        }
    }

    /// CLOCK_MONOTONIC in microseconds, the clock systemd compares `MONOTONIC_USEC=` against.
    public static func monotonicMicroseconds() -> UInt64 {
        var now = timespec()
        clock_gettime(CLOCK_MONOTONIC, &now)
        return UInt64(now.tv_sec) * 1_000_000 + UInt64(now.tv_nsec) / 1_000
    }

    /// A newline would end the assignment and start a bogus one.
    private static func oneLine(_ text: String) -> String {
        text.split(whereSeparator: \.isNewline).joined(separator: " ")
    }
}
