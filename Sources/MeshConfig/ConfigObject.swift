import Foundation

/// A JSON object being read, remembering its path for errors about its members.
struct ConfigObject {
    let fields: [String: Any]
    let path: JSONPath
    let file: String

    func error(_ message: String) -> ConfigError {
        ConfigError(file: file, path: path.text, message: message)
    }

    /// The member `key`, or nil when it is absent or `null` (null means "not set" for optional keys).
    func optional(_ key: String) -> ConfigValue? {
        guard let raw = fields[key], !(raw is NSNull) else { return nil }
        return ConfigValue(raw: raw, path: path.key(key), file: file)
    }

    func required(_ key: String) throws(ConfigError) -> ConfigValue {
        guard let raw = fields[key] else {
            throw ConfigError(file: file, path: path.key(key).text, message: "missing required key")
        }
        return ConfigValue(raw: raw, path: path.key(key), file: file)
    }

    /// Members in name order, so that the first error reported does not depend on hashing.
    var sortedMembers: [(name: String, value: ConfigValue)] {
        fields.keys.sorted().map { ($0, ConfigValue(raw: fields[$0]!, path: path.key($0), file: file)) }
    }
}
