import Foundation
import MeshTestSupport

/// A real `openssl s_server` in the background, output captured in a file, stdin held open by a pipe
/// (so it never sees EOF and quits); stopped by `stop()`, which the test's cleanup always calls.
final class OpenSSLServer {
    let outputURL: URL
    private let process: Process
    private let stdin: Pipe
    private let output: FileHandle

    init(arguments: [String], outputURL: URL) throws {
        self.outputURL = outputURL
        FileManager.default.createFile(atPath: outputURL.path, contents: nil)
        let output = try FileHandle(forWritingTo: outputURL)
        self.output = output
        let stdin = Pipe()
        self.stdin = stdin
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/setpriv")
        process.arguments = ["--pdeathsig", "KILL", "--", Command.resolve("openssl"), "s_server"] + arguments
        process.standardInput = stdin
        process.standardOutput = output
        process.standardError = output
        self.process = process
        try process.run()
    }

    /// The output so far; s_server prints the binary HTTP/2 frames it receives, so decode leniently.
    var text: String { String(decoding: (try? Data(contentsOf: self.outputURL)) ?? Data(), as: UTF8.self) }

    /// Polls the output until it contains `needle` or the deadline passes.
    func waitForOutput(containing needle: String, timeout: Duration) -> Bool {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            if self.text.contains(needle) { return true }
            if !self.process.isRunning { return self.text.contains(needle) }
            Thread.sleep(forTimeInterval: 0.05)
        }
        return false
    }

    func stop() {
        if self.process.isRunning {
            kill(self.process.processIdentifier, SIGKILL)
            let deadline = ContinuousClock.now + .seconds(5)
            while self.process.isRunning, ContinuousClock.now < deadline { Thread.sleep(forTimeInterval: 0.01) }
        }
        try? self.stdin.fileHandleForWriting.close()
        try? self.output.close()
    }
}
