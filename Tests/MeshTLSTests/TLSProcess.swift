import Foundation

/// A real child process (openssl s_client / s_server / the CLI) with its output collected, every wait
/// bounded, and `stop()` that always ends it.
final class TLSProcess: @unchecked Sendable {
    // @unchecked: `collected` is guarded by `lock`; the rest is set up before the process starts.
    private let process = Process()
    private let input = Pipe()
    private let output = Pipe()
    private let lock = NSLock()
    private var collected = Data()

    init(_ executable: String, _ arguments: [String]) throws {
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        process.standardInput = input
        process.standardOutput = output
        process.standardError = output
        output.fileHandleForReading.readabilityHandler = { [weak self] handle in
            let data = handle.availableData
            guard let self, !data.isEmpty else { return }
            self.lock.withLock { self.collected.append(data) }
        }
        try process.run()
    }

    deinit {
        stop()
    }

    /// Everything written to stdout and stderr so far.
    var text: String { lock.withLock { String(decoding: collected, as: UTF8.self) } }

    var isRunning: Bool { process.isRunning }
    var exitStatus: Int32? { process.isRunning ? nil : process.terminationStatus }

    /// Polls (every 10 ms, at most `timeout`) until the output contains `needle`.
    func waitFor(_ needle: String, timeout: TimeInterval = 10) -> Bool {
        waitUntil(timeout: timeout) { self.text.contains(needle) }
    }

    /// Polls until the process has exited; returns its status, or nil on timeout.
    @discardableResult
    func waitForExit(timeout: TimeInterval = 10) -> Int32? {
        waitUntil(timeout: timeout) { !self.process.isRunning } ? process.terminationStatus : nil
    }

    func send(_ text: String) {
        try? input.fileHandleForWriting.write(contentsOf: Data(text.utf8))
    }

    func closeInput() {
        try? input.fileHandleForWriting.close()
    }

    /// SIGTERM, then SIGKILL after a second; returns when the process is gone.
    func stop() {
        if process.isRunning {
            process.terminate()
            if !waitUntil(timeout: 1, { !self.process.isRunning }) {
                kill(process.processIdentifier, SIGKILL)
                _ = waitUntil(timeout: 5) { !self.process.isRunning }
            }
        }
        output.fileHandleForReading.readabilityHandler = nil
        closeInput()
    }

    private func waitUntil(timeout: TimeInterval, _ condition: () -> Bool) -> Bool {
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            if condition() { return true }
            Thread.sleep(forTimeInterval: 0.01)
        }
        return condition()
    }

    /// Runs a command to completion (killed after `timeout`) and returns its status and output.
    static func run(_ executable: String, _ arguments: [String], timeout: TimeInterval) throws -> (status: Int32, output: String) {
        let process = Process()
        let output = Pipe()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        process.standardInput = FileHandle.nullDevice
        process.standardOutput = output
        process.standardError = output
        try process.run()
        // Read to EOF on another thread so the wait below stays bounded.
        let box = TLSDataBox()
        let done = DispatchSemaphore(value: 0)
        DispatchQueue.global().async {
            box.data = output.fileHandleForReading.readDataToEndOfFile()
            done.signal()
        }
        guard done.wait(timeout: .now() + timeout) == .success else {
            kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
            throw TLSTestFailure("\(executable) \(arguments.joined(separator: " ")) did not finish in \(timeout) s")
        }
        process.waitUntilExit()
        return (process.terminationStatus, String(decoding: box.data, as: UTF8.self))
    }
}

private final class TLSDataBox: @unchecked Sendable {
    // @unchecked: written once before the semaphore is signalled, read after waiting on it.
    var data = Data()
}
