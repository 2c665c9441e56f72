/// Why a `LibPQConnection` could not connect or run a query.
enum LibPQError: Error, Equatable {
    /// PostgreSQL refused: its severity (as the server writes it), SQLSTATE and primary message.
    case server(severity: String, sqlState: String, message: String)
    /// libpq's own failure (refused, reset, closed, out of memory): the first line of its message.
    case client(String)
    /// The deadline passed before the server answered.
    case timedOut
    /// The caller's `PollInterrupt` fired.
    case interrupted

    /// The error behind libpq's verbose message for a failed connection attempt, e.g.
    /// `connection to server at "127.0.0.1", port 5432 failed: FATAL:  28P01: password authentication failed…`
    /// or `… failed: Connection refused`. libpq offers no fields for it (unlike a query's result),
    /// so a server's refusal is recognised by the `SEVERITY:  SQLSTATE: message` form verbose mode writes.
    init(connectionMessage text: String) {
        let line = Self.firstLine(text)
        // libpq's own prefix names the server, which the probe's report names already.
        let detail = line.range(of: " failed: ").map { String(line[$0.upperBound...]) } ?? line
        if let match = detail.wholeMatch(of: /(\S+):  ([0-9A-Z]{5}): (.*)/) {
            self = .server(severity: String(match.1), sqlState: String(match.2), message: String(match.3))
        } else {
            self = .client(detail.isEmpty ? "connection failed" : detail)
        }
    }

    /// libpq's messages go on with hints and context on further lines; the first says what happened.
    static func firstLine(_ text: String) -> String {
        String(text.prefix { $0 != "\n" })
    }
}
