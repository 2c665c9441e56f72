import Foundation

/// `meshctl ping` for a person, shaped like ping(8): one line per round trip, then min/avg/max.
public enum PingText {
    public static func render(_ report: PingReport, style: TextStyle) -> String {
        var lines = report.samplesSeconds.enumerated().map { index, seconds in
            "\(report.peer): seq=\(index + 1) time=\(HumanUnits.rtt(seconds: seconds))"
        }
        lines.append("--- \(report.peer) through the tunnel ---")
        if let min = report.minSeconds, let avg = report.averageSeconds, let max = report.maxSeconds {
            let numbers = [min, avg, max].map { String(format: "%.3f", $0 * 1000) }.joined(separator: "/")
            lines.append("\(report.samplesSeconds.count) round trips, min/avg/max = \(numbers) ms")
        } else {
            lines.append("no round trips")
        }
        return lines.joined(separator: "\n") + "\n"
    }
}
