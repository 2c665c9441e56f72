import Foundation

/// A strict parser for the Prometheus text exposition format 0.0.4, for tests (Debian's `promtool`
/// comes with a 330 MB install here). Rejects what Prometheus's own parser rejects: malformed names,
/// label sets or values, a TYPE or HELP line repeated or after its samples, a family's samples split
/// apart, the same series twice, a missing final newline.
public struct PrometheusText {
    public struct Sample: Equatable {
        public var name: String
        public var labels: [String: String]
        public var value: Double
    }

    public struct Family {
        public var name: String
        public var type: String?
        public var help: String?
        public var samples: [Sample] = []
    }

    public struct ParseError: Error, CustomStringConvertible {
        public var line: Int
        public var text: String
        public var problem: String
        public var description: String { "line \(self.line) \"\(self.text)\": \(self.problem)" }
    }

    public private(set) var families: [String: Family] = [:]

    /// The value of the series `name{labels}`, if present.
    public func value(_ name: String, _ labels: [String: String] = [:]) -> Double? {
        self.families[name]?.samples.first { $0.name == name && $0.labels == labels }?.value
    }

    /// Every series of the family `name`, by its labels.
    public func samples(_ name: String) -> [Sample] {
        self.families[name]?.samples ?? []
    }

    static let types: Set<String> = ["counter", "gauge", "histogram", "summary", "untyped"]

    public init(_ text: String) throws {
        guard text.isEmpty || text.hasSuffix("\n") else {
            throw ParseError(line: 0, text: String(text.suffix(40)), problem: "the exposition must end with a newline")
        }
        var current: String?  // the family whose lines we are in
        var finished: Set<String> = []  // families whose lines ended; they may not come back
        var seen: Set<String> = []  // series already given, as name + sorted labels
        let lines = text.split(separator: "\n", omittingEmptySubsequences: false).dropLast()
        for (index, raw) in lines.enumerated() {
            let line = String(raw)
            let number = index + 1
            func fail(_ problem: String) -> ParseError { ParseError(line: number, text: line, problem: problem) }

            if line.trimmingCharacters(in: .whitespaces).isEmpty { continue }
            let family: String
            if line.hasPrefix("#") {
                let parts = line.split(separator: " ", maxSplits: 3, omittingEmptySubsequences: false).map(String.init)
                guard parts.count >= 3, parts[0] == "#", parts[1] == "HELP" || parts[1] == "TYPE" else { continue }  // a comment
                let name = parts[2]
                guard Self.isMetricName(name) else { throw fail("bad metric name \"\(name)\"") }
                family = name
                if current != family, self.families[family] != nil {
                    throw fail("\(parts[1]) for \(family) after its family's lines ended")
                }
                var entry = self.families[family] ?? Family(name: family)
                let rest = parts.count > 3 ? parts[3] : ""
                if parts[1] == "TYPE" {
                    guard entry.type == nil else { throw fail("second TYPE line for \(family)") }
                    guard entry.samples.isEmpty else { throw fail("TYPE line for \(family) after its samples") }
                    guard Self.types.contains(rest) else { throw fail("unknown type \"\(rest)\"") }
                    entry.type = rest
                } else {
                    guard entry.help == nil else { throw fail("second HELP line for \(family)") }
                    guard let help = Self.unescape(rest) else { throw fail("bad escape in HELP") }
                    entry.help = help
                }
                self.families[family] = entry
            } else {
                let sample: Sample
                do {
                    sample = try Self.sample(line)
                } catch let problem as Problem {
                    throw fail(problem.text)
                }
                family = Self.familyName(of: sample.name, known: self.families)
                if current != family, finished.contains(family) {
                    throw fail("sample of \(family) after its family's lines ended (samples of a family must be together)")
                }
                let pairs: [String] = sample.labels.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }
                let key = sample.name + "{" + pairs.joined(separator: ",") + "}"
                guard seen.insert(key).inserted else { throw fail("the series \(key) appears twice") }
                self.families[family, default: Family(name: family)].samples.append(sample)
            }
            if let current, current != family { finished.insert(current) }
            current = family
        }
    }

    /// A histogram's or summary's `_bucket`/`_sum`/`_count` sample belongs to the family without the suffix.
    private static func familyName(of name: String, known: [String: Family]) -> String {
        for suffix in ["_bucket", "_sum", "_count"] where name.hasSuffix(suffix) {
            let base = String(name.dropLast(suffix.count))
            if let type = known[base]?.type, type == "histogram" || type == "summary" { return base }
        }
        return name
    }

    /// Why a sample line is malformed.
    private struct Problem: Error {
        var text: String
        init(_ text: String) { self.text = text }
    }

    private static func sample(_ line: String) throws -> Sample {
        let characters = Array(line)
        var index = 0
        while index < characters.count, characters[index] != "{", characters[index] != " " { index += 1 }
        let name = String(characters[0..<index])
        guard isMetricName(name) else { throw Problem("bad metric name \"\(name)\"") }
        var labels: [String: String] = [:]
        if index < characters.count, characters[index] == "{" {
            index += 1
            while true {
                guard index < characters.count else { throw Problem("unterminated label set") }
                if characters[index] == "}" {
                    index += 1
                    break
                }
                let start = index
                while index < characters.count, characters[index] != "=" { index += 1 }
                let label = String(characters[start..<index])
                guard isLabelName(label) else { throw Problem("bad label name \"\(label)\"") }
                guard labels[label] == nil else { throw Problem("label \(label) given twice") }
                index += 1
                guard index < characters.count, characters[index] == "\"" else { throw Problem("label value of \(label) not quoted") }
                index += 1
                var value = ""
                while true {
                    guard index < characters.count else { throw Problem("unterminated label value of \(label)") }
                    let character = characters[index]
                    if character == "\"" { break }
                    if character == "\\" {
                        guard index + 1 < characters.count else { throw Problem("dangling escape in \(label)") }
                        switch characters[index + 1] {
                        case "\\": value.append("\\")
                        case "\"": value.append("\"")
                        case "n": value.append("\n")
                        default: throw Problem("bad escape \\\(characters[index + 1]) in label \(label)")
                        }
                        index += 2
                        continue
                    }
                    value.append(character)
                    index += 1
                }
                index += 1
                labels[label] = value
                guard index < characters.count else { throw Problem("unterminated label set") }
                if characters[index] == "," {
                    index += 1
                } else if characters[index] != "}" {
                    throw Problem("expected , or } after label \(label)")
                }
            }
        }
        guard index < characters.count, characters[index] == " " else { throw Problem("no space before the value") }
        let fields = String(characters[(index + 1)...]).split(separator: " ", omittingEmptySubsequences: false)
        guard (1...2).contains(fields.count) else { throw Problem("expected a value and an optional timestamp") }
        guard let value = parseValue(String(fields[0])) else { throw Problem("bad value \"\(fields[0])\"") }
        if fields.count == 2, Int64(fields[1]) == nil { throw Problem("bad timestamp \"\(fields[1])\"") }
        return Sample(name: name, labels: labels, value: value)
    }

    /// Go's ParseFloat as Prometheus uses it: decimal or exponent floats, NaN, +Inf, -Inf.
    private static func parseValue(_ text: String) -> Double? {
        switch text {
        case "NaN": return .nan
        case "+Inf", "Inf": return .infinity
        case "-Inf": return -.infinity
        default:
            guard !text.isEmpty, text.allSatisfy({ $0.isNumber || "+-.eE".contains($0) }) else { return nil }
            return Double(text)
        }
    }

    private static func unescape(_ text: String) -> String? {
        var out = ""
        var escaping = false
        for character in text {
            if escaping {
                switch character {
                case "\\": out.append("\\")
                case "n": out.append("\n")
                default: return nil
                }
                escaping = false
            } else if character == "\\" {
                escaping = true
            } else {
                out.append(character)
            }
        }
        return escaping ? nil : out
    }

    public static func isMetricName(_ name: String) -> Bool {
        guard let first = name.unicodeScalars.first, first.isASCIILetter || first == "_" || first == ":" else { return false }
        return name.unicodeScalars.allSatisfy { $0.isASCIILetter || $0.isASCIIDigit || $0 == "_" || $0 == ":" }
    }

    public static func isLabelName(_ name: String) -> Bool {
        guard let first = name.unicodeScalars.first, first.isASCIILetter || first == "_" else { return false }
        return name.unicodeScalars.allSatisfy { $0.isASCIILetter || $0.isASCIIDigit || $0 == "_" }
    }
}

extension Unicode.Scalar {
    fileprivate var isASCIILetter: Bool { ("a"..."z").contains(self) || ("A"..."Z").contains(self) }
    fileprivate var isASCIIDigit: Bool { ("0"..."9").contains(self) }
}
