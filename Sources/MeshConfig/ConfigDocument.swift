import Foundation

/// Turns the bytes of a config file into a JSON tree, with syntax errors placed by line and column.
enum ConfigDocument {
    static func parse(_ data: Data, file: String) throws(ConfigError) -> ConfigValue {
        let wholeFile = { (message: String) in ConfigError(file: file, path: "", message: message) }
        if data.allSatisfy({ $0 == 0x20 || $0 == 0x0A || $0 == 0x0D || $0 == 0x09 }) {
            throw wholeFile("the file is empty; expected a JSON object")
        }
        let tree: Any
        do {
            tree = try JSONSerialization.jsonObject(with: data, options: [.fragmentsAllowed])
        } catch {
            throw wholeFile(syntaxMessage(for: error as NSError, in: data))
        }
        if let duplicate = DuplicateKeyScanner.firstDuplicate(in: data) {
            throw ConfigError(
                file: file,
                path: duplicate.text,
                message: "duplicate key; an object may name a key only once (otherwise one value is silently lost)"
            )
        }
        return ConfigValue(raw: tree, path: .root, file: file)
    }

    /// "invalid JSON at line 3, column 1: invalid value", from Foundation's "Invalid value around character 20."
    static func syntaxMessage(for error: NSError, in data: Data) -> String {
        let detail = (error.userInfo[NSDebugDescriptionErrorKey] as? String) ?? error.localizedDescription
        var reason = detail.hasSuffix(".") ? String(detail.dropLast()) : detail
        var location = ""
        if let marker = reason.range(of: " around character "),
            let offset = Int(reason[marker.upperBound...])
        {
            let (line, column) = lineAndColumn(ofByte: offset, in: data)
            location = " at line \(line), column \(column)"
            reason = String(reason[..<marker.lowerBound])
        } else if reason.hasPrefix("Unexpected end of file") {
            let (line, column) = lineAndColumn(ofByte: data.count, in: data)
            location = " at line \(line), column \(column)"
        }
        if let first = reason.first { reason = first.lowercased() + reason.dropFirst() }
        return "invalid JSON\(location): \(reason)"
    }

    /// 1-based line and column (in characters) of a byte offset.
    static func lineAndColumn(ofByte offset: Int, in data: Data) -> (line: Int, column: Int) {
        let prefix = data.prefix(max(0, min(offset, data.count)))
        let line = prefix.reduce(1) { $1 == 0x0A ? $0 + 1 : $0 }
        let lineStart = prefix.lastIndex(of: 0x0A).map { $0 + 1 } ?? prefix.startIndex
        let column = String(decoding: prefix[lineStart...], as: UTF8.self).count + 1
        return (line, column)
    }
}
