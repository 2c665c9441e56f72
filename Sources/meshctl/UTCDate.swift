import ArgumentParser
import Foundation

/// A UTC instant typed on the command line as `YYYY-MM-DD` or `YYYY-MM-DDTHH:MM:SSZ`, and the one
/// way meshctl prints dates (`2026-02-24 18:10:00 UTC`).
struct UTCDate: ExpressibleByArgument {
    let date: Date

    init?(argument: String) {
        let pieces = argument.split(separator: "T", omittingEmptySubsequences: false)
        guard (1...2).contains(pieces.count) else { return nil }
        let day = pieces[0].split(separator: "-", omittingEmptySubsequences: false)
        guard day.count == 3, day[0].count == 4, day[1].count == 2, day[2].count == 2 else { return nil }
        var time: [Substring] = ["00", "00", "00"]
        if pieces.count == 2 {
            guard pieces[1].hasSuffix("Z") else { return nil }
            time = pieces[1].dropLast().split(separator: ":", omittingEmptySubsequences: false)
            guard time.count == 3, time.allSatisfy({ $0.count == 2 }) else { return nil }
        }
        let numbers = (day + time).map { $0.allSatisfy(\.isASCII) ? Int($0) : nil }
        guard numbers.allSatisfy({ $0 != nil }) else { return nil }
        let values = numbers.map { $0! }
        var parts = tm()
        parts.tm_year = Int32(values[0] - 1900)
        parts.tm_mon = Int32(values[1] - 1)
        parts.tm_mday = Int32(values[2])
        parts.tm_hour = Int32(values[3])
        parts.tm_min = Int32(values[4])
        parts.tm_sec = Int32(values[5])
        let seconds = timegm(&parts)
        // timegm normalises 2025-02-30 into March; a date that does not come back unchanged was not real.
        guard parts.tm_year == Int32(values[0] - 1900), parts.tm_mon == Int32(values[1] - 1),
            parts.tm_mday == Int32(values[2]), parts.tm_hour == Int32(values[3]),
            parts.tm_min == Int32(values[4]), parts.tm_sec == Int32(values[5])
        else { return nil }
        date = Date(timeIntervalSince1970: TimeInterval(seconds))
    }
}
