import Foundation
import MeshTestSupport

/// One real `meshd` process started from the build products, its stdout and stderr captured in a log
/// file. Whoever starts one stops it (`stop()`), normally from tearDown; if the test process itself
/// dies, `setpriv --pdeathsig KILL` takes the child down with it.
final class MeshProcess {
    struct Failure: Error, CustomStringConvertible {
        var description: String
    }

    let node: String
    let logURL: URL
    let arguments: [String]
    private let process: Process
    private let logHandle: FileHandle

    var pid: Int32 { self.process.processIdentifier }
    var isRunning: Bool { self.process.isRunning }

    /// Starts `meshd --config CONFIG --node NODE [extra]`; returns at once (does not wait for readiness).
    /// `launcher` is a command prefix that execs meshd in place (e.g. `ip netns exec NS`, see
    /// `NetnsBed`), so `pid` is still meshd's own.
    init(config: URL, node: String, logURL: URL, extraArguments: [String] = ["--log-level", "debug"],
         launcher: [String] = []) throws {
        self.node = node
        self.logURL = logURL
        FileManager.default.createFile(atPath: logURL.path, contents: nil)
        let logHandle = try FileHandle(forWritingTo: logURL)
        self.logHandle = logHandle
        let meshd = BuildProducts.meshd.path
        let command = launcher + [meshd, "--config", config.path, "--node", node] + extraArguments
        self.arguments = command
        let process = Process()
        // pdeathsig follows the thread that forked; tests start processes from the main thread only.
        if Thread.isMainThread, FileManager.default.isExecutableFile(atPath: "/usr/bin/setpriv") {
            process.executableURL = URL(fileURLWithPath: "/usr/bin/setpriv")
            process.arguments = ["--pdeathsig", "KILL", "--"] + command
        } else {
            process.executableURL = URL(fileURLWithPath: command[0])
            process.arguments = Array(command.dropFirst())
        }
        process.standardInput = FileHandle(forReadingAtPath: "/dev/null")
        process.standardOutput = logHandle
        process.standardError = logHandle
        self.process = process
        try process.run()
    }

    deinit {
        _ = self.stop()
        try? self.logHandle.close()
    }

    /// The log so far.
    func log() -> String {
        String(decoding: (try? Data(contentsOf: self.logURL)) ?? Data(), as: UTF8.self)
    }

    /// A position in the log: pass it to `waitForLog(after:)` to see only what came later.
    func logMark() -> Int {
        ((try? FileManager.default.attributesOfItem(atPath: self.logURL.path)[.size]) as? NSNumber)?.intValue ?? 0
    }

    /// The log text written after `mark`.
    func log(after mark: Int) -> String {
        guard let data = try? Data(contentsOf: self.logURL), data.count > mark else { return "" }
        return String(decoding: data[mark...], as: UTF8.self)
    }

    /// Polls the log until a line after `mark` contains every string in `all`; returns that line, or nil
    /// at the deadline (or as soon as the process has exited and the text is still missing).
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

    @discardableResult
    func waitForLog(containing text: String, after mark: Int = 0, timeout: Duration) -> String? {
        self.waitForLog(containing: [text], after: mark, timeout: timeout)
    }

    /// The last `lines` lines of the log, for failure messages.
    func logTail(_ lines: Int = 40) -> String {
        let all = self.log().split(separator: "\n", omittingEmptySubsequences: false)
        let state = self.isRunning ? "running" : "exited \(self.process.terminationStatus)\(self.wasSignalled ? " by signal" : "")"
        return "--- \(self.node) pid \(self.pid), \(state), log \(self.logURL.path) ---\n" + all.suffix(lines).joined(separator: "\n")
    }

    /// kill -9: no chance to send GOAWAY or close anything cleanly. Waits (bounded) for the exit.
    func kill9() {
        guard self.isRunning else { return }
        kill(self.pid, SIGKILL)
        _ = self.waitForExit(timeout: .seconds(5))
    }

    /// SIGSTOP / SIGCONT: a frozen node keeps its sockets open but answers nothing, like a hung host.
    func freeze() { kill(self.pid, SIGSTOP) }
    func thaw() { kill(self.pid, SIGCONT) }

    /// Waits for the process to exit; its exit status, or nil if it is still running at the deadline.
    func waitForExit(timeout: Duration) -> Int32? {
        let deadline = ContinuousClock.now + timeout
        while self.isRunning {
            if ContinuousClock.now >= deadline { return nil }
            Thread.sleep(forTimeInterval: 0.01)
        }
        return self.process.terminationStatus
    }

    /// True when the process ended by a signal rather than exit().
    var wasSignalled: Bool { !self.isRunning && self.process.terminationReason == .uncaughtSignal }

    /// SIGTERM, then SIGKILL if it has not exited within `grace`. Returns the exit status seen after
    /// SIGTERM (nil if it had to be killed or was not running).
    @discardableResult
    func stop(grace: Duration = .seconds(15)) -> Int32? {
        guard self.isRunning else { return nil }
        kill(self.pid, SIGCONT)  // a test may have frozen it; a stopped process would not see SIGTERM
        kill(self.pid, SIGTERM)
        if let status = self.waitForExit(timeout: grace) { return status }
        kill(self.pid, SIGKILL)
        _ = self.waitForExit(timeout: .seconds(5))
        return nil
    }

    /// VmRSS from /proc/PID/status, in bytes.
    func residentBytes() -> Int? {
        guard let text = try? String(contentsOfFile: "/proc/\(self.pid)/status", encoding: .utf8) else { return nil }
        for line in text.split(separator: "\n") where line.hasPrefix("VmRSS:") {
            let fields = line.split(separator: " ", omittingEmptySubsequences: true)
            if fields.count >= 2, let kib = Int(fields[1]) { return kib * 1024 }
        }
        return nil
    }
}
