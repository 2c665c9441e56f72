/// A location inside a JSON document, printed the way errors show it: `services.postgres.on.db9`, `forwards[0].to`.
struct JSONPath: CustomStringConvertible, Sendable, Equatable {
    /// The whole document.
    static let root = JSONPath(text: "")

    let text: String

    var description: String { text }

    /// The member `key` of the object at this path. Keys that would make the path ambiguous
    /// (dots, spaces, brackets, ...) are written as `["key"]`.
    func key(_ key: String) -> JSONPath {
        if Self.isPlain(key) {
            return JSONPath(text: text.isEmpty ? key : "\(text).\(key)")
        }
        return JSONPath(text: "\(text)[\(quoted(key))]")
    }

    /// Element `index` of the array at this path.
    func index(_ index: Int) -> JSONPath {
        JSONPath(text: "\(text)[\(index)]")
    }

    private static func isPlain(_ key: String) -> Bool {
        !key.isEmpty
            && key.unicodeScalars.allSatisfy { scalar in
                switch scalar {
                case "a"..."z", "A"..."Z", "0"..."9", "_", "-": true
                default: false
                }
            }
    }
}

/// `text` in double quotes with JSON escapes, so values in messages look exactly like they do in the file.
func quoted(_ text: String) -> String {
    var out = "\""
    for scalar in text.unicodeScalars {
        switch scalar {
        case "\"": out += "\\\""
        case "\\": out += "\\\\"
        case "\n": out += "\\n"
        case "\t": out += "\\t"
        case "\r": out += "\\r"
        case _ where scalar.value < 0x20:
            let hex = String(scalar.value, radix: 16)
            out += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
        default: out.unicodeScalars.append(scalar)
        }
    }
    return out + "\""
}
