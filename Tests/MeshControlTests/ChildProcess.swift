import Foundation

/// Runs a program to completion with a time limit, its output captured in files (no pipe can fill
/// up and stall it), and kills it if it overruns.
struct ChildProcess {
    struct Result {
        var status: Int32
        var stdout: String
        var stderr: String
    }

    /// The built products of this build (meshd, meshctl) sit next to the test executable.
    static let productsDirectory: URL = {
        let exe = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
        var directory = URL(fileURLWithPath: exe).deletingLastPathComponent()
        while directory.path.contains(".xctest") { directory.deleteLastPathComponent() }
        return directory
    }()

    static func product(_ name: String) throws -> String {
        let path = self.productsDirectory.appendingPathComponent(name).path
        guard FileManager.default.isExecutableFile(atPath: path) else {
            throw MissingProduct(path: path)
        }
        return path
    }

    struct MissingProduct: Error, CustomStringConvertible {
        var path: String
        var description: String { "\(path) is not built; run 'swift build --build-tests' (it builds the executables too)" }
    }

    static func run(
        _ executable: String, _ arguments: [String], environment: [String: String]? = nil, timeout: TimeInterval = 30
    ) throws -> Result {
        let directory = try TemporaryDirectory.make()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let outPath = directory + "/stdout", errPath = directory + "/stderr"
        _ = FileManager.default.createFile(atPath: outPath, contents: nil)
        _ = FileManager.default.createFile(atPath: errPath, contents: nil)
        let out = try FileHandle(forWritingTo: URL(fileURLWithPath: outPath))
        let err = try FileHandle(forWritingTo: URL(fileURLWithPath: errPath))
        defer {
            try? out.close()
            try? err.close()
        }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        if let environment { process.environment = environment }
        process.standardOutput = out
        process.standardError = err
        process.standardInput = FileHandle.nullDevice
        try process.run()
        let deadline = Date().addingTimeInterval(timeout)
        while process.isRunning, Date() < deadline { usleep(10_000) }
        if process.isRunning {
            kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
            throw TimedOut(command: ([executable] + arguments).joined(separator: " "), seconds: timeout)
        }
        process.waitUntilExit()
        return Result(
            status: process.terminationStatus,
            stdout: (try? String(contentsOfFile: outPath, encoding: .utf8)) ?? "",
            stderr: (try? String(contentsOfFile: errPath, encoding: .utf8)) ?? "")
    }

    struct TimedOut: Error, CustomStringConvertible {
        var command: String
        var seconds: TimeInterval
        var description: String { "\(command) did not finish within \(seconds)s" }
    }

    /// Runs a setup command (useradd, openssl, ...) and throws with its stderr if it fails.
    @discardableResult
    static func check(_ executable: String, _ arguments: [String]) throws -> String {
        let result = try self.run(executable, arguments)
        guard result.status == 0 else {
            throw SetupFailed(command: ([executable] + arguments).joined(separator: " "), result: result)
        }
        return result.stdout
    }

    struct SetupFailed: Error, CustomStringConvertible {
        var command: String
        var result: Result
        var description: String { "\(command) exited \(result.status): \(result.stderr)" }
    }
}
