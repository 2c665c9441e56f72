import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// Runs a program to completion with a time limit, its output captured in files (no pipe can fill
/// up and stall it), and kills it if it overruns. Spawned with posix_spawn and reaped with waitpid
/// here: Foundation's Process left `runuser` unreaped (a zombie) when waited on from async tests.
struct ChildProcess {
    struct Result {
        var status: Int32
        var stdout: String
        var stderr: String
    }

    static func run(
        _ executable: String, _ arguments: [String], environment: [String: String]? = nil, timeout: TimeInterval = 30
    ) throws -> Result {
        let directory = NSTemporaryDirectory() + "meshbalancer-child-" + UUID().uuidString
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let outPath = directory + "/stdout", errPath = directory + "/stderr"

        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
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
        guard spawned == 0 else { throw SpawnFailed(command: executable, errno: spawned) }

        var status: Int32 = 0
        let deadline = Date().addingTimeInterval(timeout)
        var reaped = false
        while Date() < deadline {
            let result = waitpid(pid, &status, WNOHANG)
            if result == pid || (result < 0 && errno != EINTR) {
                reaped = true
                break
            }
            usleep(5_000)
        }
        if !reaped {
            kill(pid, SIGKILL)
            _ = waitpid(pid, &status, 0)
            throw TimedOut(command: ([executable] + arguments).joined(separator: " "), seconds: timeout)
        }
        // WIFEXITED / WEXITSTATUS, which Swift does not import as functions.
        let exitStatus = (status & 0x7F) == 0 ? (status >> 8) & 0xFF : 128 + (status & 0x7F)
        return Result(
            status: exitStatus,
            stdout: (try? String(contentsOfFile: outPath, encoding: .utf8)) ?? "",
            stderr: (try? String(contentsOfFile: errPath, encoding: .utf8)) ?? "")
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
    static func check(
        _ executable: String, _ arguments: [String], environment: [String: String]? = nil, timeout: TimeInterval = 30
    ) throws -> String {
        let result = try self.run(executable, arguments, environment: environment, timeout: timeout)
        guard result.status == 0 else {
            throw Failed(command: ([executable] + arguments).joined(separator: " "), result: result)
        }
        return result.stdout
    }

    struct SpawnFailed: Error, CustomStringConvertible {
        var command: String
        var errno: Int32
        var description: String { "cannot start \(command): \(String(cString: strerror(errno)))" }
    }

    struct TimedOut: Error, CustomStringConvertible {
        var command: String
        var seconds: TimeInterval
        var description: String { "\(command) did not finish within \(seconds)s" }
    }

    struct Failed: Error, CustomStringConvertible {
        var command: String
        var result: Result
        var description: String { "\(command) exited \(result.status): \(result.stderr) \(result.stdout)" }
    }
}
