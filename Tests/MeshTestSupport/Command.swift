import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// What a finished (or timed-out) command left behind.
public struct CommandResult: Sendable {
    public var status: Int32
    public var stdout: String
    public var stderr: String
    public var timedOut: Bool
    public var output: String { self.stdout + self.stderr }
}

/// Runs a short-lived program to completion with a deadline: output captured through files (no pipe
/// can fill up and wedge the child), stdin from given bytes or /dev/null, killed if it overruns.
/// Spawned with posix_spawn and reaped with waitpid here: Foundation's Process left `runuser`
/// unreaped (a zombie) when waited on from async tests. For a long-running process whose log a test
/// watches, see `SpawnedProcess`.
public enum Command {
    /// The program could not be started at all (missing, not executable).
    public struct LaunchError: Error, CustomStringConvertible {
        public var description: String
    }

    /// A set-up command (`check`) that exited non-zero or overran.
    public struct Failed: Error, CustomStringConvertible {
        public var command: String
        public var result: CommandResult

        public init(command: String, result: CommandResult) {
            self.command = command
            self.result = result
        }

        public var description: String {
            "\(self.command) \(self.result.timedOut ? "timed out" : "exited \(self.result.status)"): \(self.result.output)"
        }
    }

    /// Runs the program and waits for it; a timeout kills it and is reported in `timedOut`.
    /// `environment` nil inherits the test's.
    public static func run(
        _ executable: String,
        _ arguments: [String],
        environment: [String: String]? = nil,
        stdin: Data? = nil,
        directory: URL? = nil,
        timeout: Duration = .seconds(30)
    ) throws -> CommandResult {
        try self.start(executable, arguments, environment: environment, stdin: stdin, directory: directory).wait(timeout: timeout)
    }

    /// Runs a set-up command (useradd, openssl, meshctl pki …); its stdout, or `Failed` with its output.
    @discardableResult
    public static func check(
        _ executable: String,
        _ arguments: [String],
        environment: [String: String]? = nil,
        stdin: Data? = nil,
        timeout: Duration = .seconds(30)
    ) throws -> String {
        let result = try self.run(executable, arguments, environment: environment, stdin: stdin, timeout: timeout)
        guard result.status == 0, !result.timedOut else {
            throw Failed(command: ([executable] + arguments).joined(separator: " "), result: result)
        }
        return result.stdout
    }

    /// A started command, for a test that drives a long client (pgbench, a sleeping psql) while it
    /// does something else: signal it, then `wait` for it, which every caller must do to reap it.
    public final class Running {
        public let pid: pid_t
        public let command: String
        private let scratch: URL
        private var reaped = false

        fileprivate init(pid: pid_t, command: String, scratch: URL) {
            self.pid = pid
            self.command = command
            self.scratch = scratch
        }

        deinit {
            if !self.reaped { _ = self.wait(timeout: .zero) }
        }

        public func signal(_ number: Int32) {
            if !self.reaped { kill(self.pid, number) }
        }

        /// Waits at most `timeout` for the exit; past it the command is killed and `timedOut` set.
        public func wait(timeout: Duration) -> CommandResult {
            defer { try? FileManager.default.removeItem(at: self.scratch) }
            var status: Int32 = 0
            var timedOut = false
            let deadline = ContinuousClock.now + timeout
            while !self.reaped {
                let result = waitpid(self.pid, &status, WNOHANG)
                if result == self.pid || (result < 0 && errno != EINTR) {
                    self.reaped = true
                    break
                }
                if ContinuousClock.now >= deadline {
                    timedOut = true
                    kill(self.pid, SIGKILL)
                    _ = waitpid(self.pid, &status, 0)
                    self.reaped = true
                    break
                }
                usleep(5_000)
            }
            return CommandResult(
                status: timedOut ? -1 : ExitStatus.code(status),
                stdout: String(decoding: (try? Data(contentsOf: self.scratch.appendingPathComponent("stdout"))) ?? Data(), as: UTF8.self),
                stderr: String(decoding: (try? Data(contentsOf: self.scratch.appendingPathComponent("stderr"))) ?? Data(), as: UTF8.self),
                timedOut: timedOut
            )
        }
    }

    /// Starts the program (in `directory`, else the test's own) with its output going to files and
    /// returns at once.
    public static func start(
        _ executable: String,
        _ arguments: [String],
        environment: [String: String]? = nil,
        stdin: Data? = nil,
        directory: URL? = nil
    ) throws -> Running {
        let scratch = FileManager.default.temporaryDirectory.appendingPathComponent("tunnelmesh-cmd-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: scratch, withIntermediateDirectories: true)
        let inPath = scratch.appendingPathComponent("stdin").path
        _ = FileManager.default.createFile(atPath: inPath, contents: stdin ?? Data())
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, stdin == nil ? "/dev/null" : inPath, O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, scratch.appendingPathComponent("stdout").path, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
        posix_spawn_file_actions_addopen(&actions, 2, scratch.appendingPathComponent("stderr").path, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
        if let directory { try SpawnedProcess.changeDirectory(&actions, to: directory) }
        // Servers started through pg_ctl must not inherit the test's sockets.
        SpawnedProcess.markDescriptorsCloseOnExec()

        let path = self.resolve(executable)
        let argv = ([path] + arguments).map { strdup($0) } + [nil]
        let env = (environment ?? ProcessInfo.processInfo.environment).map { strdup("\($0.key)=\($0.value)") } + [nil]
        defer {
            for pointer in argv { free(pointer) }
            for pointer in env { free(pointer) }
        }
        var pid: pid_t = 0
        let spawned = posix_spawn(&pid, path, &actions, nil, argv, env)
        guard spawned == 0 else {
            try? FileManager.default.removeItem(at: scratch)
            throw LaunchError(description: "cannot start \(executable): \(String(cString: strerror(spawned)))")
        }
        return Running(pid: pid, command: ([executable] + arguments).joined(separator: " "), scratch: scratch)
    }

    /// An absolute path as given, else the first match on PATH (posix_spawn does not search it).
    public static func resolve(_ executable: String) -> String {
        if executable.hasPrefix("/") { return executable }
        let path = ProcessInfo.processInfo.environment["PATH"] ?? "/usr/local/bin:/usr/bin:/bin"
        for dir in path.split(separator: ":") {
            let candidate = "\(dir)/\(executable)"
            if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
        }
        return executable
    }
}

/// waitpid's status word as a shell would report it: the exit code, or 128 + the signal.
enum ExitStatus {
    static func code(_ raw: Int32) -> Int32 {
        // WIFEXITED / WEXITSTATUS, which Swift does not import as functions.
        let signal = raw & 0x7f
        return signal == 0 ? (raw >> 8) & 0xff : 128 + signal
    }
}
