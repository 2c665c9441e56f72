/// A PostgreSQL server's Unix socket, `DIR/.s.PGSQL.PORT`, as its directory and port: the form in
/// which PostgreSQL names its sockets and libpq finds them (`host=DIR port=PORT`).
public struct PostgresSocketPath: Sendable, Equatable {
    public var directory: String
    public var port: Int

    public init(directory: String, port: Int) {
        self.directory = directory
        self.port = port
    }

    /// Nil unless the file is named `.s.PGSQL.<port>` with a port of 1...65535, in a directory.
    public init?(_ path: String) {
        guard let slash = path.lastIndex(of: "/") else { return nil }
        let name = path[path.index(after: slash)...]
        let prefix = ".s.PGSQL."
        guard name.hasPrefix(prefix) else { return nil }
        let digits = name.dropFirst(prefix.count)
        guard !digits.isEmpty, digits.count <= 5, digits.allSatisfy({ $0.isASCII && $0.isNumber }), let port = Int(digits),
            (1...65535).contains(port)
        else { return nil }
        self.directory = slash == path.startIndex ? "/" : String(path[..<slash])
        self.port = port
    }
}
