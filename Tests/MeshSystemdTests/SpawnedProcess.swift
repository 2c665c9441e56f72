import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// A child process started with `posix_spawn`, so the test controls exactly which descriptors it
/// gets: `passing` become fds 3, 4, … and `LISTEN_PID` is set to the child's own pid (through
/// `sh -c 'LISTEN_PID=$$ exec …'`), the way systemd hands over a `.socket` unit's sockets. Output
/// goes to a log file; `setpriv --pdeathsig KILL` takes the child down if the test process dies.
/// Whoever starts one stops it.
final class SpawnedProcess {
    struct Failure: Error, CustomStringConvertible {
        var description: String
    }

    let pid: pid_t
    let logURL: URL
    let label: String
    private var status: Int32?

    init(
        label: String, executable: String, arguments: [String], environment: [String: String] = [:],
        passing fds: [Int32] = [], logURL: URL
    ) throws {
        self.label = label
        self.logURL = logURL
        FileManager.default.createFile(atPath: logURL.path, contents: nil)

        // Move the passed sockets out of the way first: a source that already were fd 4 would be
        // overwritten by the dup2 that makes fd 3 … (and dup2 onto itself would keep CLOEXEC).
        let high = fds.map { fcntl($0, F_DUPFD_CLOEXEC, 200) }
        defer { for fd in high where fd >= 0 { Glibc.close(fd) } }
        guard !high.contains(where: { $0 < 0 }) else { throw Failure(description: "fcntl(F_DUPFD_CLOEXEC) failed") }

        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, logURL.path, O_WRONLY | O_APPEND, 0)
        posix_spawn_file_actions_adddup2(&actions, 1, 2)
        for (index, fd) in high.enumerated() { posix_spawn_file_actions_adddup2(&actions, fd, 3 + Int32(index)) }

        let setpriv = FileManager.default.isExecutableFile(atPath: "/usr/bin/setpriv") ? ["/usr/bin/setpriv", "--pdeathsig", "KILL", "--"] : []
        let shell = fds.isEmpty ? [] : ["/bin/sh", "-c", "LISTEN_PID=$$; export LISTEN_PID; exec \"$@\"", "sh"]
        let argv = shell + setpriv + [executable] + arguments
        var env = ProcessInfo.processInfo.environment.filter { !$0.key.hasPrefix("LISTEN_") && $0.key != "NOTIFY_SOCKET" && !$0.key.hasPrefix("WATCHDOG_") }
        for (key, value) in environment { env[key] = value }
        if !fds.isEmpty { env["LISTEN_FDS"] = "\(fds.count)" }
        let cArgs = argv.map { strdup($0) } + [nil]
        let cEnv = env.map { strdup("\($0.key)=\($0.value)") } + [nil]
        defer {
            for pointer in cArgs { free(pointer) }
            for pointer in cEnv { free(pointer) }
        }
        var pid: pid_t = 0
        let rc = posix_spawn(&pid, argv[0], &actions, nil, cArgs, cEnv)
        guard rc == 0 else { throw Failure(description: "posix_spawn \(executable): \(String(cString: strerror(rc)))") }
        self.pid = pid
    }

    deinit { self.stop() }

    var isRunning: Bool {
        guard self.status == nil else { return false }
        var raw: Int32 = 0
        let rc = waitpid(self.pid, &raw, WNOHANG)
        if rc == self.pid {
            self.status = raw
            return false
        }
        return rc == 0
    }

    /// The exit code (or 128 + signal), once exited.
    var exitCode: Int32? {
        guard !self.isRunning, let raw = self.status else { return nil }
        let signal = raw & 0x7f
        return signal == 0 ? (raw >> 8) & 0xff : 128 + signal
    }

    func signal(_ signal: Int32) {
        if self.isRunning { kill(self.pid, signal) }
    }

    /// Waits (bounded) for the exit; the exit code, or nil if still running at the deadline.
    func waitForExit(timeout: Duration) -> Int32? {
        let deadline = ContinuousClock.now + timeout
        while self.isRunning {
            if ContinuousClock.now >= deadline { return nil }
            Thread.sleep(forTimeInterval: 0.01)
        }
        return self.exitCode
    }

    /// SIGTERM, then SIGKILL after `grace`. The exit code after SIGTERM, or nil if it had to be killed.
    @discardableResult
    func stop(grace: Duration = .seconds(15)) -> Int32? {
        guard self.isRunning else { return self.exitCode }
        kill(self.pid, SIGTERM)
        if let code = self.waitForExit(timeout: grace) { return code }
        self.kill9()
        return nil
    }

    func kill9() {
        guard self.isRunning else { return }
        kill(self.pid, SIGKILL)
        _ = self.waitForExit(timeout: .seconds(5))
    }

    func log() -> String {
        String(decoding: (try? Data(contentsOf: self.logURL)) ?? Data(), as: UTF8.self)
    }

    /// A position in the log: pass it to `log(after:)` or `waitForLog(after:)` to see only what came later.
    func logMark() -> Int {
        ((try? FileManager.default.attributesOfItem(atPath: self.logURL.path)[.size]) as? NSNumber)?.intValue ?? 0
    }

    /// The log written after `mark`.
    func log(after mark: Int) -> String {
        guard let data = try? Data(contentsOf: self.logURL), data.count > mark else { return "" }
        return String(decoding: data[mark...], as: UTF8.self)
    }

    /// Polls the log (after `mark`) until a line contains every string in `all`; the line, or nil
    /// at the deadline (or at once when the process has exited without writing it).
    @discardableResult
    func waitForLog(containing all: [String], after mark: Int = 0, timeout: Duration) -> String? {
        let deadline = ContinuousClock.now + timeout
        while true {
            let running = self.isRunning
            for line in self.log(after: mark).split(separator: "\n") where all.allSatisfy({ line.contains($0) }) {
                return String(line)
            }
            if !running || ContinuousClock.now >= deadline { return nil }
            Thread.sleep(forTimeInterval: 0.02)
        }
    }

    func logTail(_ lines: Int = 40) -> String {
        let state = self.isRunning ? "running" : "exited \(self.exitCode.map(String.init) ?? "?")"
        return "--- \(self.label) pid \(self.pid), \(state), log \(self.logURL.path) ---\n"
            + self.log().split(separator: "\n", omittingEmptySubsequences: false).suffix(lines).joined(separator: "\n")
    }
}
