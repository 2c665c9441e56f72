import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// Runs a program to completion with a time limit, its output captured in files (no pipe can fill
/// up and stall it), and kills it if it overruns. Spawned with posix_spawn and reaped with waitpid
/// here: Foundation's Process left `runuser` unreaped (a zombie) when waited on from async tests.
public struct ChildProcess {
    public struct Result {
        public var status: Int32
        public var stdout: String
        public var stderr: String
    }

    public static func run(
        _ executable: String, _ arguments: [String], environment: [String: String]? = nil, stdin: String? = nil,
        timeout: TimeInterval = 30
    ) throws -> Result {
        try self.start(executable, arguments, environment: environment, stdin: stdin).wait(timeout: timeout)
    }

    /// A started child: signal it, then `wait` for it (which every caller must do, to reap it).
    public final class Running {
        public let pid: pid_t
        public let command: String
        private let directory: String
        private var reaped = false

        fileprivate init(pid: pid_t, command: String, directory: String) {
            self.pid = pid
            self.command = command
            self.directory = directory
        }

        deinit {
            if !self.reaped { _ = try? self.wait(timeout: 0) }
        }

        public func signal(_ number: Int32) {
            if !self.reaped { kill(self.pid, number) }
        }

        /// Waits at most `timeout` for the exit, then kills the child and throws `TimedOut`.
        public func wait(timeout: TimeInterval) throws -> Result {
            defer { try? FileManager.default.removeItem(atPath: self.directory) }
            var status: Int32 = 0
            let deadline = Date().addingTimeInterval(timeout)
            while !self.reaped {
                let result = waitpid(self.pid, &status, WNOHANG)
                if result == self.pid || (result < 0 && errno != EINTR) {
                    self.reaped = true
                    break
                }
                if Date() >= deadline { break }
                usleep(5_000)
            }
            if !self.reaped {
                kill(self.pid, SIGKILL)
                _ = waitpid(self.pid, &status, 0)
                self.reaped = true
                throw TimedOut(command: self.command, seconds: timeout)
            }
            // WIFEXITED / WEXITSTATUS, which Swift does not import as functions.
            let exitStatus = (status & 0x7F) == 0 ? (status >> 8) & 0xFF : 128 + (status & 0x7F)
            return Result(
                status: exitStatus,
                stdout: (try? String(contentsOfFile: self.directory + "/stdout", encoding: .utf8)) ?? "",
                stderr: (try? String(contentsOfFile: self.directory + "/stderr", encoding: .utf8)) ?? "")
        }
    }

    /// Starts a program with its output going to files and its input from `stdin` (a path) or /dev/null.
    public static func start(
        _ executable: String, _ arguments: [String], environment: [String: String]? = nil, stdin: String? = nil
    ) throws -> Running {
        let directory = NSTemporaryDirectory() + "meshbalancer-child-" + UUID().uuidString
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let outPath = directory + "/stdout", errPath = directory + "/stderr"

        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, stdin ?? "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, outPath, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
        posix_spawn_file_actions_addopen(&actions, 2, errPath, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
        // Servers started through pg_ctl must not inherit the test's sockets.
        self.markDescriptorsCloseOnExec()

        let argv = ([executable] + arguments).map { strdup($0) } + [nil]
        let env = (environment ?? ProcessInfo.processInfo.environment).map { strdup("\($0.key)=\($0.value)") } + [nil]
        defer {
            for pointer in argv { free(pointer) }
            for pointer in env { free(pointer) }
        }
        var pid: pid_t = 0
        let spawned = posix_spawn(&pid, executable, &actions, nil, argv, env)
        guard spawned == 0 else {
            try? FileManager.default.removeItem(atPath: directory)
            throw SpawnFailed(command: executable, errno: spawned)
        }
        return Running(pid: pid, command: ([executable] + arguments).joined(separator: " "), directory: directory)
    }

    /// Sets FD_CLOEXEC on every descriptor above stderr (harmless to this process, which never execs).
    private static func markDescriptorsCloseOnExec() {
        let descriptors = (try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/fd")) ?? []
        for fd in descriptors.compactMap(Int32.init) where fd > 2 {
            let flags = fcntl(fd, F_GETFD)
            if flags >= 0 { _ = fcntl(fd, F_SETFD, flags | FD_CLOEXEC) }
        }
    }

    /// Runs a setup command and throws with its output if it fails.
    @discardableResult
    public static func check(
        _ executable: String, _ arguments: [String], environment: [String: String]? = nil, timeout: TimeInterval = 30
    ) throws -> String {
        let result = try self.run(executable, arguments, environment: environment, timeout: timeout)
        guard result.status == 0 else {
            throw Failed(command: ([executable] + arguments).joined(separator: " "), result: result)
        }
        return result.stdout
    }

    public struct SpawnFailed: Error, CustomStringConvertible {
        public var command: String
        public var errno: Int32
        public var description: String { "cannot start \(command): \(String(cString: strerror(errno)))" }
    }

    public struct TimedOut: Error, CustomStringConvertible {
        public var command: String
        public var seconds: TimeInterval
        public var description: String { "\(command) did not finish within \(seconds)s" }
    }

    public struct Failed: Error, CustomStringConvertible {
        public var command: String
        public var result: Result
        public var description: String { "\(command) exited \(result.status): \(result.stderr) \(result.stdout)" }
    }
}
