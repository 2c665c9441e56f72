/// Durations as written in mesh.json: a non-negative decimal number and a unit, e.g. "500ms", "2s", "1.5s", "1m", "1h".
public enum DurationText {
    /// Units in nanoseconds. Longest suffix first so "ms" is not read as "m" followed by junk.
    private static let units: [(suffix: String, nanoseconds: Int64)] = [
        ("ns", 1), ("us", 1_000), ("µs", 1_000), ("ms", 1_000_000),
        ("s", 1_000_000_000), ("m", 60_000_000_000), ("h", 3_600_000_000_000),
    ]

    /// The duration `text` denotes, or nil when it is empty, negative, has no or an unknown unit,
    /// is finer than a nanosecond, or does not fit in 64-bit nanoseconds.
    public static func parse(_ text: String) -> Duration? {
        let numberEnd = text.firstIndex { !($0.isASCII && ($0.isNumber || $0 == ".")) } ?? text.endIndex
        let number = text[..<numberEnd]
        let suffix = text[numberEnd...]
        guard let unit = units.first(where: { $0.suffix == suffix })?.nanoseconds else { return nil }

        let parts = number.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count <= 2, let wholeText = parts.first, !wholeText.isEmpty, wholeText.count <= 18,
            let whole = Int64(wholeText)
        else { return nil }
        var total = whole.multipliedReportingOverflow(by: unit)
        guard !total.overflow else { return nil }

        if parts.count == 2 {
            let fractionText = parts[1]
            guard !fractionText.isEmpty, fractionText.count <= 9, let fraction = Int64(fractionText) else {
                return nil
            }
            var scale: Int64 = 1
            for _ in 0..<fractionText.count { scale *= 10 }
            // fraction < 10^9 and unit <= 3.6e12, so divide first when the unit allows it to stay in range.
            let fractionNanos: Int64
            if unit % scale == 0 {
                fractionNanos = (unit / scale) * fraction
            } else {
                let product = fraction * unit  // unit < scale here, so fraction * unit < 10^18
                guard product % scale == 0 else { return nil }  // finer than a nanosecond
                fractionNanos = product / scale
            }
            let sum = total.partialValue.addingReportingOverflow(fractionNanos)
            guard !sum.overflow else { return nil }
            total = (sum.partialValue, false)
        }
        return .nanoseconds(total.partialValue)
    }

    /// The shortest text that `parse` reads back as `duration`: "2s", "1m", "1.5s", "250ms", "10us".
    public static func format(_ duration: Duration) -> String {
        let (seconds, attoseconds) = duration.components
        let secondsAsNanos = seconds.multipliedReportingOverflow(by: 1_000_000_000)
        let nanosPart = attoseconds / 1_000_000_000
        let sum = secondsAsNanos.partialValue.addingReportingOverflow(nanosPart)
        guard !secondsAsNanos.overflow, !sum.overflow else { return "\(seconds)s" }
        let nanos = sum.partialValue
        if nanos < 0 { return "-" + format(.nanoseconds(-nanos)) }
        if nanos == 0 { return "0s" }

        for (suffix, unit) in [("h", 3_600_000_000_000), ("m", 60_000_000_000), ("s", 1_000_000_000)] as [(String, Int64)]
        where nanos % unit == 0 {
            return "\(nanos / unit)\(suffix)"
        }
        if nanos >= 1_000_000_000 && nanos % 1_000_000 == 0 {
            // Whole milliseconds above a second read best as decimal seconds: "1.5s", "2.25s".
            var fraction = String(nanos % 1_000_000_000 / 1_000_000)
            fraction = String(repeating: "0", count: 3 - fraction.count) + fraction
            while fraction.hasSuffix("0") { fraction.removeLast() }
            return "\(nanos / 1_000_000_000).\(fraction)s"
        }
        for (suffix, unit) in [("ms", 1_000_000), ("us", 1_000)] as [(String, Int64)] where nanos % unit == 0 {
            return "\(nanos / unit)\(suffix)"
        }
        return "\(nanos)ns"
    }
}
