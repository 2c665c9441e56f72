/// A problem in a configuration file, located by file name and JSON path so a person can fix it.
public struct ConfigError: Error, CustomStringConvertible, Equatable, Sendable {
    /// The file as the caller named it (for example `mesh.json`).
    public var file: String
    /// Dotted JSON path with `[i]` for array elements, e.g. `forwards[0].to`; empty for the whole file.
    public var path: String
    /// What is wrong, and where it helps, what to write instead.
    public var message: String

    public init(file: String, path: String, message: String) {
        self.file = file
        self.path = path
        self.message = message
    }

    public var description: String {
        path.isEmpty ? "\(file): \(message)" : "\(file): \(path): \(message)"
    }
}
