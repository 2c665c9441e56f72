import Foundation

/// What a finished (or timed-out) command left behind.
public struct CommandResult {
    public var status: Int32
    public var stdout: String
    public var stderr: String
    public var timedOut: Bool
    public var output: String { self.stdout + self.stderr }
}

/// Runs a short-lived program to completion with a deadline, output captured through files (no pipe
/// can fill up and wedge the child) and stdin from a file or /dev/null.
public enum Command {
    /// The program could not be started at all (missing, not executable).
    public struct LaunchError: Error, CustomStringConvertible {
        public var description: String
    }

    public static func run(
        _ executable: String, _ arguments: [String], stdin: Data? = nil, timeout: Duration = .seconds(30),
        directory: URL? = nil
    ) throws -> CommandResult {
        let scratch = FileManager.default.temporaryDirectory
            .appendingPathComponent("it-cmd-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: scratch, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: scratch) }
        let outURL = scratch.appendingPathComponent("out")
        let errURL = scratch.appendingPathComponent("err")
        FileManager.default.createFile(atPath: outURL.path, contents: nil)
        FileManager.default.createFile(atPath: errURL.path, contents: nil)

        let process = Process()
        process.executableURL = URL(fileURLWithPath: self.resolve(executable))
        process.arguments = arguments
        if let directory { process.currentDirectoryURL = directory }
        let outHandle = try FileHandle(forWritingTo: outURL)
        let errHandle = try FileHandle(forWritingTo: errURL)
        process.standardOutput = outHandle
        process.standardError = errHandle
        if let stdin {
            let inURL = scratch.appendingPathComponent("in")
            FileManager.default.createFile(atPath: inURL.path, contents: stdin)
            process.standardInput = try FileHandle(forReadingFrom: inURL)
        } else {
            process.standardInput = FileHandle(forReadingAtPath: "/dev/null")
        }
        do {
            try process.run()
        } catch {
            throw LaunchError(description: "cannot start \(executable) \(arguments.joined(separator: " ")): \(error)")
        }
        let deadline = ContinuousClock.now + timeout
        var timedOut = false
        while process.isRunning {
            if ContinuousClock.now >= deadline {
                timedOut = true
                kill(process.processIdentifier, SIGKILL)
                break
            }
            Thread.sleep(forTimeInterval: 0.01)
        }
        // After SIGKILL the exit is prompt; still bound the wait.
        let reapDeadline = ContinuousClock.now + .seconds(5)
        while process.isRunning, ContinuousClock.now < reapDeadline { Thread.sleep(forTimeInterval: 0.01) }
        try? outHandle.close()
        try? errHandle.close()
        let status = process.isRunning ? -1 : process.terminationStatus
        let stdout = String(decoding: (try? Data(contentsOf: outURL)) ?? Data(), as: UTF8.self)
        let stderr = String(decoding: (try? Data(contentsOf: errURL)) ?? Data(), as: UTF8.self)
        return CommandResult(status: status, stdout: stdout, stderr: stderr, timedOut: timedOut)
    }

    /// An absolute path as given, else the first match on PATH (Process needs a full path).
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
