import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// A long-running child (meshd, openssl s_server / s_client, a supervisor) started with
/// `posix_spawn`, so the test controls exactly which descriptors it gets: `passing` become fds 3, 4, …
/// and `LISTEN_PID` is set to the child's own pid (through `sh -c 'LISTEN_PID=$$ exec …'`), the way
/// systemd hands over a `.socket` unit's sockets. `launcher` is a command prefix that execs the
/// program in place (`ip netns exec NS`, a sanitizer wrapper), so `pid` is still the program's own;
/// `directory` is its working directory (for a relative `--config`).
/// stdout and stderr go to a log file the test polls; stdin is /dev/null or, with `interactive`, a
/// pipe the test writes to. `setpriv --pdeathsig KILL` takes the child down if the test process dies.
/// Whoever starts one stops it (`stop()`), normally from tearDown; deinit stops it too.
public final class SpawnedProcess {
    public struct Failure: Error, CustomStringConvertible {
        public var description: String
        public init(description: String) { self.description = description }
    }

    public let pid: pid_t
    public let logURL: URL
    public let label: String
    /// The full command line, launcher and all.
    public let arguments: [String]
    private var status: Int32?
    private var input: Int32 = -1
    private let ownsLog: Bool

    public init(
        label: String,
        executable: String,
        arguments: [String],
        environment: [String: String] = [:],
        passing fds: [Int32] = [],
        launcher: [String] = [],
        directory: URL? = nil,
        interactive: Bool = false,
        logURL: URL? = nil
    ) throws {
        self.label = label
        // Without a mesh directory to keep it in, the log is a temp file of its own, removed with the process.
        self.ownsLog = logURL == nil
        let logURL =
            logURL
            ?? FileManager.default.temporaryDirectory
            .appendingPathComponent("tunnelmesh-\(label)-\(UUID().uuidString.prefix(8)).log")
        self.logURL = logURL
        _ = FileManager.default.createFile(atPath: logURL.path, contents: nil)

        // Move the passed sockets out of the way first: a source that already were fd 4 would be
        // overwritten by the dup2 that makes fd 3 … (and dup2 onto itself would keep CLOEXEC).
        let high = fds.map { fcntl($0, F_DUPFD_CLOEXEC, 200) }
        defer { for fd in high where fd >= 0 { Glibc.close(fd) } }
        guard !high.contains(where: { $0 < 0 }) else { throw Failure(description: "fcntl(F_DUPFD_CLOEXEC) failed") }

        var pipeEnds: [Int32] = [-1, -1]
        if interactive {
            guard pipe(&pipeEnds) == 0 else { throw Failure(description: "pipe: \(String(cString: strerror(errno)))") }
            for fd in pipeEnds { _ = fcntl(fd, F_SETFD, FD_CLOEXEC) }
        }
        defer { if pipeEnds[0] >= 0 { Glibc.close(pipeEnds[0]) } }

        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        if interactive {
            posix_spawn_file_actions_adddup2(&actions, pipeEnds[0], 0)
        } else {
            posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        }
        posix_spawn_file_actions_addopen(&actions, 1, logURL.path, O_WRONLY | O_APPEND, 0)
        posix_spawn_file_actions_adddup2(&actions, 1, 2)
        for (index, fd) in high.enumerated() { posix_spawn_file_actions_adddup2(&actions, fd, 3 + Int32(index)) }
        if let directory { try Self.changeDirectory(&actions, to: directory) }
        Self.markDescriptorsCloseOnExec()

        // pdeathsig follows the thread that forked, so it is only safe from the main thread (tests
        // start processes there; an async test's worker thread may end while the child should live).
        let setpriv =
            Thread.isMainThread && FileManager.default.isExecutableFile(atPath: "/usr/bin/setpriv")
            ? ["/usr/bin/setpriv", "--pdeathsig", "KILL", "--"] : []
        let shell = fds.isEmpty ? [] : ["/bin/sh", "-c", "LISTEN_PID=$$; export LISTEN_PID; exec \"$@\"", "sh"]
        let command = launcher + [Command.resolve(executable)] + arguments
        self.arguments = command
        let argv = shell + setpriv + command
        var env = ProcessInfo.processInfo.environment.filter {
            !$0.key.hasPrefix("LISTEN_") && $0.key != "NOTIFY_SOCKET" && !$0.key.hasPrefix("WATCHDOG_")
        }
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
        guard rc == 0 else {
            if pipeEnds[1] >= 0 { Glibc.close(pipeEnds[1]) }
            throw Failure(description: "posix_spawn \(executable): \(String(cString: strerror(rc)))")
        }
        self.pid = pid
        self.input = pipeEnds[1]
    }

    deinit {
        self.stop()
        self.closeInput()
        if self.ownsLog { try? FileManager.default.removeItem(at: self.logURL) }
    }

    /// Makes the child start in `directory`: glibc's posix_spawn_file_actions_addchdir_np (2.29+),
    /// looked up at run time because Swift's Glibc module does not declare the GNU extensions.
    static func changeDirectory(_ actions: inout posix_spawn_file_actions_t, to directory: URL) throws {
        typealias AddChdir = @convention(c) (UnsafeMutablePointer<posix_spawn_file_actions_t>, UnsafePointer<CChar>) -> Int32
        guard let symbol = dlsym(nil, "posix_spawn_file_actions_addchdir_np") else {
            throw Failure(description: "this libc has no posix_spawn_file_actions_addchdir_np")
        }
        let rc = directory.path.withCString { unsafeBitCast(symbol, to: AddChdir.self)(&actions, $0) }
        guard rc == 0 else { throw Failure(description: "addchdir \(directory.path): \(String(cString: strerror(rc)))") }
    }

    /// Sets FD_CLOEXEC on every descriptor above stderr, so a child (or a server it starts, as
    /// pg_ctl does) holds none of the test's sockets open. Harmless here: the test process never execs.
    static func markDescriptorsCloseOnExec() {
        let descriptors = (try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/fd")) ?? []
        for fd in descriptors.compactMap(Int32.init) where fd > 2 {
            let flags = fcntl(fd, F_GETFD)
            if flags >= 0 { _ = fcntl(fd, F_SETFD, flags | FD_CLOEXEC) }
        }
    }

    public var isRunning: Bool {
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
    public var exitCode: Int32? {
        guard !self.isRunning, let raw = self.status else { return nil }
        return ExitStatus.code(raw)
    }

    /// True when the process ended by a signal rather than exit().
    public var wasSignalled: Bool {
        guard !self.isRunning, let raw = self.status else { return false }
        return raw & 0x7f != 0
    }

    public func signal(_ signal: Int32) {
        if self.isRunning { kill(self.pid, signal) }
    }

    /// SIGSTOP / SIGCONT: a frozen node keeps its sockets open but answers nothing, like a hung host.
    public func freeze() { self.signal(SIGSTOP) }
    public func thaw() { self.signal(SIGCONT) }

    /// Writes to the child's stdin (`interactive` only).
    public func send(_ text: String) {
        guard self.input >= 0 else { return }
        let bytes = Array(text.utf8)
        var written = 0
        while written < bytes.count {
            let n = bytes[written...].withUnsafeBytes { Glibc.write(self.input, $0.baseAddress, $0.count) }
            if n <= 0 { return }
            written += n
        }
    }

    /// Closes the child's stdin: it reads EOF.
    public func closeInput() {
        if self.input >= 0 {
            Glibc.close(self.input)
            self.input = -1
        }
    }

    /// Waits (bounded) for the exit; the exit code, or nil if still running at the deadline.
    @discardableResult
    public func waitForExit(timeout: Duration = .seconds(10)) -> Int32? {
        let deadline = ContinuousClock.now + timeout
        while self.isRunning {
            if ContinuousClock.now >= deadline { return nil }
            Thread.sleep(forTimeInterval: 0.01)
        }
        return self.exitCode
    }

    /// SIGTERM, then SIGKILL after `grace`. The exit code after SIGTERM, or nil if it had to be killed.
    @discardableResult
    public func stop(grace: Duration = .seconds(15)) -> Int32? {
        guard self.isRunning else { return self.exitCode }
        kill(self.pid, SIGCONT)  // a test may have frozen it; a stopped process would not see SIGTERM
        kill(self.pid, SIGTERM)
        if let code = self.waitForExit(timeout: grace) { return code }
        self.kill9()
        return nil
    }

    /// kill -9: no chance to send GOAWAY or close anything cleanly. Waits (bounded) for the exit.
    public func kill9() {
        guard self.isRunning else { return }
        kill(self.pid, SIGKILL)
        _ = self.waitForExit(timeout: .seconds(5))
    }

    /// Everything written to stdout and stderr so far.
    public func log() -> String {
        String(decoding: (try? Data(contentsOf: self.logURL)) ?? Data(), as: UTF8.self)
    }

    /// A position in the log: pass it to `log(after:)` or `waitForLog(after:)` to see only what came later.
    public func logMark() -> Int {
        ((try? FileManager.default.attributesOfItem(atPath: self.logURL.path)[.size]) as? NSNumber)?.intValue ?? 0
    }

    /// The log written after `mark`.
    public func log(after mark: Int) -> String {
        guard let data = try? Data(contentsOf: self.logURL), data.count > mark else { return "" }
        return String(decoding: data[mark...], as: UTF8.self)
    }

    /// Polls the log (after `mark`) until a line contains every string in `all`; the line, or nil
    /// at the deadline (or at once when the process has exited without writing it).
    @discardableResult
    public func waitForLog(containing all: [String], after mark: Int = 0, timeout: Duration) -> String? {
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

    @discardableResult
    public func waitForLog(containing text: String, after mark: Int = 0, timeout: Duration) -> String? {
        self.waitForLog(containing: [text], after: mark, timeout: timeout)
    }

    /// Polls until the output as a whole contains `text` (which may span lines, as a reply does).
    public func waitForOutput(_ text: String, timeout: Duration = .seconds(10)) -> Bool {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            if self.log().contains(text) { return true }
            Thread.sleep(forTimeInterval: 0.01)
        }
        return self.log().contains(text)
    }

    /// The last `lines` lines of the log, for failure messages.
    public func logTail(_ lines: Int = 40) -> String {
        let state = self.isRunning ? "running" : "exited \(self.exitCode.map(String.init) ?? "?")"
        return "--- \(self.label) pid \(self.pid), \(state), log \(self.logURL.path) ---\n"
            + self.log().split(separator: "\n", omittingEmptySubsequences: false).suffix(lines).joined(separator: "\n")
    }

    /// VmRSS from /proc/PID/status, in bytes.
    public func residentBytes() -> Int? {
        guard let text = try? String(contentsOfFile: "/proc/\(self.pid)/status", encoding: .utf8) else { return nil }
        for line in text.split(separator: "\n") where line.hasPrefix("VmRSS:") {
            let fields = line.split(separator: " ", omittingEmptySubsequences: true)
            if fields.count >= 2, let kib = Int(fields[1]) { return kib * 1024 }
        }
        return nil
    }
}
