import CLibPQ

#if canImport(Glibc)
import Glibc
#endif

/// One connection to PostgreSQL through libpq, driven by libpq's non-blocking API so that every wait
/// for the server has a deadline and can be interrupted from another thread.
///
/// libpq's calls still run on the caller's thread, so callers use a thread of their own, never an
/// event loop. Not thread-safe, like libpq's `PGconn`: one thread at a time.
final class LibPQConnection: @unchecked Sendable {
    private var handle: OpaquePointer?

    private init(handle: OpaquePointer) {
        self.handle = handle
    }

    deinit {
        self.close()
    }

    /// Connects with libpq's connection keywords (`host`, `port`, `user`, `dbname`, ...), failing
    /// with `.timedOut` at `deadline` and `.interrupted` once `interrupt` fires.
    static func connect(
        _ parameters: [(keyword: String, value: String)],
        deadline: ContinuousClock.Instant,
        interrupt: PollInterrupt
    ) throws(LibPQError) -> LibPQConnection {
        guard let handle = Self.startConnecting(parameters) else { throw .client("libpq could not allocate a connection") }
        let connection = LibPQConnection(handle: handle)
        guard PQstatus(handle) != CONNECTION_BAD else { throw connection.connectionError() }
        // Verbose messages carry the SQLSTATE, which is how a refused login reaches the report.
        PQsetErrorVerbosity(handle, PQERRORS_VERBOSE)
        // libpq prints a server's notices (e.g. the warning sent as it shuts down) to stderr, outside
        // the agent's log; what matters reaches the report as the error that follows.
        PQsetNoticeProcessor(handle, { _, _ in }, nil)
        // libpq's protocol: act as if the last poll asked for writing, then do what each poll asks.
        var state = PGRES_POLLING_WRITING
        while state != PGRES_POLLING_OK {
            switch state {
            case PGRES_POLLING_READING:
                _ = try connection.wait(for: POLLIN, deadline: deadline, interrupt: interrupt)
            case PGRES_POLLING_WRITING:
                _ = try connection.wait(for: POLLOUT, deadline: deadline, interrupt: interrupt)
            default:
                throw connection.connectionError()
            }
            state = PQconnectPoll(handle)
        }
        // Writes must never block either: a query waits for a writable socket like it waits for answers.
        guard PQsetnonblocking(handle, 1) == 0 else { throw connection.connectionError() }
        return connection
    }

    private static func startConnecting(_ parameters: [(keyword: String, value: String)]) -> OpaquePointer? {
        // libpq takes two NULL-terminated arrays of C strings; these copies live until it returns.
        let keywords = parameters.map { strdup($0.keyword) } + [nil]
        let values = parameters.map { strdup($0.value) } + [nil]
        defer { for pointer in keywords + values { free(pointer) } }
        return keywords.map { UnsafePointer($0) }.withUnsafeBufferPointer { keywordPointers in
            values.map { UnsafePointer($0) }.withUnsafeBufferPointer { valuePointers in
                PQconnectStartParams(keywordPointers.baseAddress, valuePointers.baseAddress, 0)
            }
        }
    }

    /// True once libpq has seen the connection fail; it must not be used again.
    var isBroken: Bool {
        self.handle.map { PQstatus($0) == CONNECTION_BAD } ?? true
    }

    /// Runs `sql` (one or more statements) and returns the rows of its results as text, nil for
    /// NULL, with the same deadline and interruption as `connect`.
    func query(_ sql: String, deadline: ContinuousClock.Instant, interrupt: PollInterrupt) throws(LibPQError) -> [[String?]] {
        guard let handle = self.handle else { throw .client("connection closed") }
        guard PQsendQuery(handle, sql) == 1 else { throw self.connectionError() }
        // A non-blocking connection may hold part of the query back until the socket takes it; the
        // server's answers are read meanwhile so that neither side waits for the other.
        while true {
            let flushed = PQflush(handle)
            if flushed == 0 { break }
            guard flushed == 1 else { throw self.connectionError() }
            if try self.wait(for: POLLIN | POLLOUT, deadline: deadline, interrupt: interrupt) & Int16(POLLIN) != 0 {
                guard PQconsumeInput(handle) == 1 else { throw self.connectionError() }
            }
        }
        var rows: [[String?]] = []
        var failure: LibPQError?
        while true {
            while PQisBusy(handle) == 1 {
                _ = try self.wait(for: POLLIN, deadline: deadline, interrupt: interrupt)
                guard PQconsumeInput(handle) == 1 else { throw self.connectionError() }
            }
            guard let result = PQgetResult(handle) else { break }
            defer { PQclear(result) }
            switch PQresultStatus(result) {
            case PGRES_TUPLES_OK:
                rows += Self.rows(of: result)
            case PGRES_COMMAND_OK, PGRES_EMPTY_QUERY:
                break
            default:
                failure = failure ?? Self.resultError(result)
            }
        }
        if let failure { throw failure }
        return rows
    }

    /// Ends the session (a Terminate message, never waited for) and frees libpq's state.
    func close() {
        if let handle = self.handle { PQfinish(handle) }
        self.handle = nil
    }

    // MARK: Waiting

    /// Waits until the socket is ready for one of `events` (`POLLIN`, `POLLOUT`), the deadline
    /// passes, or `interrupt` fires; returns the socket's `revents`.
    private func wait(for events: Int32, deadline: ContinuousClock.Instant, interrupt: PollInterrupt) throws(LibPQError) -> Int16 {
        guard let handle = self.handle, PQsocket(handle) >= 0 else { throw self.connectionError() }
        while true {
            let left = deadline - .now
            guard left > .zero else { throw .timedOut }
            var fds = [
                pollfd(fd: PQsocket(handle), events: Int16(events), revents: 0),
                pollfd(fd: interrupt.fileDescriptor, events: Int16(POLLIN), revents: 0),
            ]
            // Rounded up, so a wait never ends just short of its deadline and spins.
            let milliseconds = Int32(min((left / .milliseconds(1)).rounded(.up), Double(Int32.max)))
            let ready = poll(&fds, nfds_t(fds.count), milliseconds)
            if ready < 0 {
                guard errno == EINTR else { throw .client("poll(): \(String(cString: strerror(errno)))") }
                continue
            }
            if fds[1].revents != 0 { throw .interrupted }
            // Errors and hang-ups count as ready: libpq's next call meets them and says what happened.
            if fds[0].revents != 0 { return fds[0].revents }
        }
    }

    // MARK: Results and errors

    private static func rows(of result: OpaquePointer) -> [[String?]] {
        (0..<PQntuples(result)).map { row in
            (0..<PQnfields(result)).map { column in
                PQgetisnull(result, row, column) == 1 ? nil : String(cString: PQgetvalue(result, row, column))
            }
        }
    }

    /// A failed result's error, from its fields when the server sent them.
    private static func resultError(_ result: OpaquePointer) -> LibPQError {
        func field(_ code: Int32) -> String? { PQresultErrorField(result, code).map { String(cString: $0) } }
        if let severity = field(tm_pg_diag_severity()), let state = field(tm_pg_diag_sqlstate()),
            let message = field(tm_pg_diag_message_primary())
        {
            return .server(severity: severity, sqlState: state, message: message)
        }
        return .client(LibPQError.firstLine(String(cString: PQresultErrorMessage(result))))
    }

    /// The connection's last error. libpq keeps no fields for errors met while connecting, only the
    /// text, so a server's refusal is read back from the verbose form libpq wrote.
    private func connectionError() -> LibPQError {
        guard let handle = self.handle else { return .client("connection closed") }
        return LibPQError(connectionMessage: String(cString: PQerrorMessage(handle)))
    }
}
