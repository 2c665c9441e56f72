import Foundation

/// A file in systemd's `EnvironmentFile=` syntax (systemd.exec(5)), read the way systemd reads it
/// so the socket generator sees the node name meshd.service will get: `KEY=VALUE` lines, blank
/// lines and lines starting with `#` or `;` ignored, values in single quotes (literal) or double
/// quotes (`\"`, `\\`, `` \` ``, `\$` escapes), a backslash before a newline continuing the line,
/// trailing blanks of an unquoted value dropped; a later assignment wins. Where systemd only logs
/// and skips (a line without `=`, a bad key, an unterminated quote) this is an error naming the
/// line, since a node name half-read is worse than none.
struct EnvironmentFile {
    var path: String
    var values: [String: String]

    /// Where the parser is within the current line, as in systemd's own env-file parser.
    private enum State {
        case beforeKey
        case key
        case beforeValue
        case value
        case valueEscape
        case singleQuoted
        case doubleQuoted
        case doubleQuotedEscape
        case comment
    }

    /// The file's assignments, or nil when there is no file (`EnvironmentFile=-` tolerates that too).
    static func load(path: String) throws -> EnvironmentFile? {
        let data: Data
        do {
            data = try Data(contentsOf: URL(fileURLWithPath: path))
        } catch CocoaError.fileReadNoSuchFile {
            return nil
        } catch {
            throw MeshctlFailure(code: 2, message: "\(path): cannot read the environment file: \(error.localizedDescription)")
        }
        guard let text = String(data: data, encoding: .utf8) else {
            throw Self.problem(path, 1, "not UTF-8 text")
        }
        return EnvironmentFile(path: path, values: try parse(text, path: path))
    }

    static func parse(_ text: String, path: String) throws(MeshctlFailure) -> [String: String] {
        var values: [String: String] = [:]
        var state = State.beforeKey
        var key = ""
        var value = ""
        // Blanks at the end of an unquoted value are not part of it; count them until a non-blank.
        var trailingBlanks = 0
        var line = 1
        var keyLine = 1

        func finish() throws(MeshctlFailure) {
            let name = key.trimmingCharacters(in: .whitespaces)
            guard Self.isValidKey(name) else {
                throw Self.problem(path, keyLine, "\(name.debugDescription) is not a variable name (letters, digits and _)")
            }
            values[name] = String(value.dropLast(trailingBlanks))
            key = ""
            value = ""
            trailingBlanks = 0
        }

        for character in text {
            let newline = character == "\n" || character == "\r\n"
            switch state {
            case .beforeKey:
                if character == "#" || character == ";" {
                    state = .comment
                } else if !newline, !character.isWhitespace {
                    state = .key
                    keyLine = line
                    key.append(character)
                }
            case .key:
                if newline {
                    throw Self.problem(path, line, "expected KEY=VALUE, got \(key.debugDescription)")
                } else if character == "=" {
                    state = .beforeValue
                } else {
                    key.append(character)
                }
            case .beforeValue:
                if newline {
                    try finish()
                    state = .beforeKey
                } else if character == "'" {
                    state = .singleQuoted
                } else if character == "\"" {
                    state = .doubleQuoted
                } else if character == "\\" {
                    state = .valueEscape
                } else if !character.isWhitespace {
                    state = .value
                    value.append(character)
                }
            case .value:
                if newline {
                    try finish()
                    state = .beforeKey
                } else if character == "\\" {
                    state = .valueEscape
                    trailingBlanks = 0
                } else {
                    trailingBlanks = character.isWhitespace ? trailingBlanks + 1 : 0
                    value.append(character)
                }
            case .valueEscape:
                state = .value
                if !newline { value.append(character) }
            case .singleQuoted:
                if character == "'" { state = .beforeValue } else { value.append(character) }
            case .doubleQuoted:
                if character == "\"" {
                    state = .beforeValue
                } else if character == "\\" {
                    state = .doubleQuotedEscape
                } else {
                    value.append(character)
                }
            case .doubleQuotedEscape:
                state = .doubleQuoted
                if "\"\\`$".contains(character) {
                    value.append(character)
                } else if !newline {
                    value.append("\\")
                    value.append(character)
                }
            case .comment:
                if newline { state = .beforeKey }
            }
            if newline { line += 1 }
        }
        switch state {
        case .beforeKey, .comment:
            break
        case .key:
            throw Self.problem(path, line, "expected KEY=VALUE, got \(key.debugDescription)")
        case .singleQuoted, .doubleQuoted, .doubleQuotedEscape:
            throw Self.problem(path, keyLine, "the value of \(key.trimmingCharacters(in: .whitespaces)) has no closing quote")
        case .beforeValue, .value, .valueEscape:
            try finish()
        }
        return values
    }

    private static func problem(_ path: String, _ line: Int, _ text: String) -> MeshctlFailure {
        MeshctlFailure(code: 2, message: "\(path):\(line): \(text)")
    }

    private static func isValidKey(_ name: String) -> Bool {
        guard let first = name.unicodeScalars.first, first == "_" || (first.isASCII && first.properties.isAlphabetic) else { return false }
        return name.unicodeScalars.allSatisfy { $0 == "_" || ($0.isASCII && ($0.properties.isAlphabetic || ("0"..."9").contains($0))) }
    }

    /// The last `--node NAME` or `--node=NAME` among the words of `options` (meshd.service passes
    /// `$MESHD_OPTS` unquoted, so systemd splits it at blanks), for files written before MESHD_NODE.
    static func nodeOption(in options: String) -> String? {
        let words = options.split(whereSeparator: { $0.isWhitespace }).map(String.init)
        var node: String?
        for (index, word) in words.enumerated() {
            if word == "--node", index + 1 < words.count {
                node = words[index + 1]
            } else if word.hasPrefix("--node=") {
                node = String(word.dropFirst("--node=".count))
            }
        }
        return node
    }
}
