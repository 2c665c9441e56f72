import Foundation

/// One JSON value and the path it was found at, so every reading error can say exactly where.
struct ConfigValue {
    let raw: Any
    let path: JSONPath
    let file: String

    var kind: JSONKind { JSONKind(of: raw) }

    func error(_ message: String) -> ConfigError {
        ConfigError(file: file, path: path.text, message: message)
    }

    func typeError(expected: String, hint: String = "") -> ConfigError {
        error("expected \(expected), got \(kind.rawValue)\(hint)")
    }

    /// An object with a fixed set of keys; any other key is an error (typos must not be ignored).
    func object(knownKeys: [String]) throws(ConfigError) -> ConfigObject {
        let object = try freeObject()
        for key in object.fields.keys.sorted() where !knownKeys.contains(key) {
            throw ConfigError(
                file: file,
                path: path.key(key).text,
                message: KeySuggestion.unknownKeyMessage(key, known: knownKeys)
            )
        }
        return object
    }

    /// An object whose keys are names the file chooses (node names, service names, ...).
    func freeObject() throws(ConfigError) -> ConfigObject {
        guard let fields = raw as? [String: Any] else { throw typeError(expected: "object") }
        return ConfigObject(fields: fields, path: path, file: file)
    }

    func array() throws(ConfigError) -> [ConfigValue] {
        guard let elements = raw as? [Any] else { throw typeError(expected: "array") }
        return elements.enumerated().map { ConfigValue(raw: $1, path: path.index($0), file: file) }
    }

    func string() throws(ConfigError) -> String {
        guard let text = raw as? String else { throw typeError(expected: "string") }
        return text
    }

    func nonEmptyString() throws(ConfigError) -> String {
        let text = try string()
        guard !text.isEmpty else { throw error("must not be empty") }
        return text
    }

    func bool() throws(ConfigError) -> Bool {
        guard kind == .boolean, let number = raw as? NSNumber else { throw typeError(expected: "true or false") }
        return number.boolValue
    }

    func integer() throws(ConfigError) -> Int {
        guard kind == .number, let number = raw as? NSNumber else { throw typeError(expected: "integer") }
        let double = number.doubleValue
        guard double.rounded() == double, let value = Int(exactly: double) else {
            throw error("expected integer, got \(number)")
        }
        return value
    }

    /// A duration string such as "500ms" or "2s". Zero is refused unless the setting gives it a meaning.
    func duration(allowZero: Bool) throws(ConfigError) -> Duration {
        guard let text = raw as? String else {
            throw typeError(expected: "string", hint: " (write durations as strings such as \"500ms\" or \"2s\")")
        }
        guard let duration = DurationText.parse(text) else {
            throw error("expected a duration such as \"500ms\", \"2s\" or \"1m\", got \(quoted(text))")
        }
        if !allowZero && duration == .zero {
            throw error("must be greater than zero, got \(quoted(text))")
        }
        return duration
    }

    /// A listen address or service target: `host:port` or `unix:/path` (relative paths resolve against `directory`).
    func endpoint(relativeTo directory: String) throws(ConfigError) -> Endpoint {
        let text = try string()
        switch Endpoint.parseExplained(text, relativeTo: directory) {
        case .success(let endpoint):
            if case .unix(let socketPath) = endpoint { try checkSocketPathLength(socketPath) }
            return endpoint
        case .failure(.malformed):
            throw error("expected host:port or unix:/path, got \(quoted(text))")
        case .failure(.portOutOfRange(let port)):
            throw error("port \(port) is out of range 1-65535 in \(quoted(text))")
        }
    }

    /// Unix socket paths must fit in sockaddr_un; a longer one would only fail later, at bind time.
    func checkSocketPathLength(_ socketPath: String) throws(ConfigError) {
        let length = socketPath.utf8.count
        if length > Endpoint.maxUnixPathLength {
            throw error(
                "unix socket path \(quoted(socketPath)) is \(length) bytes long; the limit is "
                    + "\(Endpoint.maxUnixPathLength), so use a shorter path"
            )
        }
    }
}
