import Foundation
import XCTest

/// A throwaway PostgreSQL server for tests, from Debian's packages: `initdb` into a temporary
/// directory owned by the `postgres` user (PostgreSQL refuses to run as root), listening on
/// 127.0.0.1 at a free port and on a Unix socket in its own directory. A primary can make a
/// streaming standby of itself with `pg_basebackup -R`. Whoever starts one stops it (`stop()`).
public final class PostgresCluster {
    /// The user the servers run as, and the superuser inside them.
    public static let osUser = "postgres"
    public static let superuser = "postgres"

    /// The newest PostgreSQL under /usr/lib/postgresql, e.g. /usr/lib/postgresql/15/bin.
    public static func binDirectory() throws -> String {
        let root = "/usr/lib/postgresql"
        let versions = ((try? FileManager.default.contentsOfDirectory(atPath: root)) ?? [])
            .compactMap(Int.init).sorted()
            .filter { FileManager.default.isExecutableFile(atPath: "\(root)/\($0)/bin/initdb") }
        guard let newest = versions.last else {
            throw Problem("PostgreSQL is not installed (no \(root)/*/bin/initdb); scripts/test.sh installs the postgresql package")
        }
        return "\(root)/\(newest)/bin"
    }

    public struct Problem: Error, CustomStringConvertible {
        public var description: String
        public init(_ description: String) { self.description = description }
    }

    public let name: String
    /// The directory holding `data/`, the server log and the Unix socket; owned by `osUser`.
    public let directory: String
    public let port: Int
    public let bin: String
    public private(set) var running = false

    public var dataDirectory: String { self.directory + "/data" }
    public var logFile: String { self.directory + "/server.log" }
    /// The server's Unix socket, as a service target would name it.
    public var socketPath: String { self.directory + "/.s.PGSQL.\(self.port)" }

    private init(name: String, directory: String, port: Int, bin: String) {
        self.name = name
        self.directory = directory
        self.port = port
        self.bin = bin
    }

    /// A temporary root for a test's clusters, owned by the server user: in memory (/dev/shm) where
    /// there is one, since initdb, pg_basebackup and removing a cluster took seconds each on disk.
    public static func makeRoot() throws -> String {
        let base = FileManager.default.isWritableFile(atPath: "/dev/shm") ? "/dev/shm" : "/tmp"
        let root = base + "/meshbalancer-pg-" + UUID().uuidString.prefix(8)
        try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: false)
        try Command.check("/bin/chown", ["\(osUser):", root])
        return root
    }

    public static func removeRoot(_ root: String) {
        // rm, not FileManager: removing a cluster's ~2,000 files took FileManager 2.7 s, rm 0.1 s.
        _ = try? Command.run("/bin/rm", ["-rf", "--", root])
    }

    /// A new primary: initdb, loopback-only configuration, started. `hba` lines come before the
    /// defaults (local trust, loopback trust, loopback replication trust).
    public static func primary(name: String, in root: String, hba: [String] = []) throws -> PostgresCluster {
        let bin = try self.binDirectory()
        let cluster = PostgresCluster(name: name, directory: "\(root)/\(name)", port: try TCPSocket.freePort(host: "127.0.0.1"), bin: bin)
        try cluster.asServerUser("/bin/mkdir", ["-m", "0700", cluster.directory])
        try cluster.asServerUser(
            "\(bin)/initdb",
            ["-D", cluster.dataDirectory, "-U", superuser, "--auth=trust", "-E", "UTF8", "--no-sync", "--no-instructions"],
            timeout: .seconds(60)
        )
        let hbaLines =
            hba + [
                "local all all trust", "host all all 127.0.0.1/32 trust", "host replication all 127.0.0.1/32 trust",
            ]
        try cluster.writeAsServerUser(hbaLines.joined(separator: "\n") + "\n", to: cluster.dataDirectory + "/pg_hba.conf")
        try cluster.appendSettings()
        try cluster.start()
        return cluster
    }

    /// A streaming standby of this primary: `pg_basebackup -R` (which writes primary_conninfo and
    /// standby.signal), its own port and socket, started.
    public func makeStandby(name: String, in root: String) throws -> PostgresCluster {
        let standby = PostgresCluster(
            name: name,
            directory: "\(root)/\(name)",
            port: try TCPSocket.freePort(host: "127.0.0.1"),
            bin: self.bin
        )
        try standby.asServerUser("/bin/mkdir", ["-m", "0700", standby.directory])
        try standby.asServerUser(
            "\(self.bin)/pg_basebackup",
            [
                "-h", "127.0.0.1", "-p", "\(self.port)", "-U", Self.superuser, "-D", standby.dataDirectory, "-R", "-X", "stream", "-c",
                "fast",
            ],
            timeout: .seconds(60)
        )
        try standby.appendSettings()
        try standby.start()
        return standby
    }

    /// Settings appended to postgresql.conf (later lines win, so a standby's override the copied ones).
    private func appendSettings() throws {
        let settings = """

            # tunnelmesh test cluster \(self.name)
            port = \(self.port)
            listen_addresses = '127.0.0.1'
            unix_socket_directories = '\(self.directory)'
            fsync = off
            synchronous_commit = off
            full_page_writes = off
            shared_buffers = 16MB
            max_connections = 30
            max_wal_senders = 5
            wal_receiver_status_interval = 1s
            hot_standby_feedback = on
            log_min_messages = warning

            """
        let path = self.dataDirectory + "/postgresql.conf"
        let existing = try String(contentsOfFile: path, encoding: .utf8)
        try self.writeAsServerUser(existing + settings, to: path)
    }

    public func start() throws {
        try self.asServerUser(
            "\(self.bin)/pg_ctl",
            ["-D", self.dataDirectory, "-l", self.logFile, "-w", "-t", "30", "start"],
            timeout: .seconds(40)
        )
        self.running = true
    }

    /// Stops at once (no checkpoint), as a crash would look to the probe. Safe to call twice.
    public func stop() {
        guard self.running else { return }
        _ = try? self.asServerUser(
            "\(self.bin)/pg_ctl",
            ["-D", self.dataDirectory, "-m", "immediate", "-w", "-t", "15", "stop"],
            timeout: .seconds(20)
        )
        self.running = false
    }

    public func promote() throws {
        try self.asServerUser("\(self.bin)/pg_ctl", ["-D", self.dataDirectory, "-w", "-t", "30", "promote"], timeout: .seconds(40))
    }

    /// Runs SQL as the superuser over the Unix socket; returns unaligned, tuples-only output.
    @discardableResult
    public func sql(_ statement: String, database: String = "postgres") throws -> String {
        let output = try Command.check(
            "\(self.bin)/psql",
            [
                "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-h", self.directory, "-p", "\(self.port)", "-U", Self.superuser, "-d",
                database, "-c", statement,
            ],
            timeout: .seconds(30)
        )
        return output.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    /// The last lines of the server log, for failure messages.
    public var logTail: String {
        let text = (try? String(contentsOfFile: self.logFile, encoding: .utf8)) ?? "(no log)"
        return text.split(separator: "\n").suffix(15).joined(separator: "\n")
    }

    private func asServerUser(_ executable: String, _ arguments: [String], timeout: Duration = .seconds(30)) throws {
        try Command.check("/usr/sbin/runuser", ["-u", Self.osUser, "--", executable] + arguments, timeout: timeout)
    }

    private func writeAsServerUser(_ text: String, to path: String) throws {
        try text.write(toFile: path, atomically: false, encoding: .utf8)
        try Command.check("/bin/chown", ["\(Self.osUser):", path])
    }
}
