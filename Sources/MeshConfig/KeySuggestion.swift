/// "Did you mean" hints for unknown keys, by edit distance.
enum KeySuggestion {
    /// The message for an unknown key: a close known key when there is one, else the full list.
    static func unknownKeyMessage(_ key: String, known: [String]) -> String {
        if let suggestion = closest(to: key, among: known) {
            return "unknown key; did you mean \(quoted(suggestion))?"
        }
        return "unknown key; expected one of: \(known.sorted().joined(separator: ", "))"
    }

    /// The known key within edit distance 2 of `key`, the nearest first (ties by name).
    static func closest(to key: String, among known: [String]) -> String? {
        known
            .map { (key: $0, distance: editDistance(key, $0)) }
            .filter { $0.distance <= 2 }
            .min { ($0.distance, $0.key) < ($1.distance, $1.key) }?
            .key
    }

    /// Levenshtein distance: insertions, deletions and substitutions each cost one.
    static func editDistance(_ a: String, _ b: String) -> Int {
        let a = Array(a)
        let b = Array(b)
        if a.isEmpty { return b.count }
        if b.isEmpty { return a.count }
        var previous = Array(0...b.count)
        var current = [Int](repeating: 0, count: b.count + 1)
        for i in 1...a.count {
            current[0] = i
            for j in 1...b.count {
                let substitution = previous[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1)
                current[j] = min(previous[j] + 1, current[j - 1] + 1, substitution)
            }
            swap(&previous, &current)
        }
        return previous[b.count]
    }
}
