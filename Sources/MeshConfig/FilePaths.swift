/// Path arithmetic for config-relative paths, done on strings so it never touches the file system.
enum FilePaths {
    /// `path` made absolute against `directory` (itself absolute), with "." and ".." folded away.
    static func absolute(_ path: String, against directory: String) -> String {
        normalized(path.hasPrefix("/") ? path : directory + "/" + path)
    }

    /// Removes empty, "." and ".." components of an absolute path; ".." at the root stays at the root.
    static func normalized(_ path: String) -> String {
        var components: [Substring] = []
        for component in path.split(separator: "/", omittingEmptySubsequences: true) {
            switch component {
            case ".": continue
            case "..": if !components.isEmpty { components.removeLast() }
            default: components.append(component)
            }
        }
        return "/" + components.joined(separator: "/")
    }

    /// The last component of `path`, as used in listener names ("forward-pg.sock").
    static func basename(_ path: String) -> String {
        path.split(separator: "/").last.map(String.init) ?? path
    }
}
