import Foundation
import MeshTestSupport

/// The failover bed's writer (`scripts/bench/failover_bed.py writer`, shared with the benchmark and
/// the demo) run inside app1's namespace: numbered INSERTs every 20 ms through the balancer's `rw`,
/// reconnecting after any error, one line per outcome. Each acknowledged insert names the server
/// address it landed on (`inet_server_addr()`, the node's 127.0.1.N), so the test can tell which
/// node accepted which write.
final class FailoverWriter {
    struct Outcome: Equatable {
        var id: Int
        /// Seconds since the epoch, by the writer's clock.
        var time: Double
        /// The address of the node that acknowledged it; nil for an error.
        var node: String?
    }

    let process: SpawnedProcess
    private let output: String
    private let stopFile: String

    /// Starts writing for at most `seconds` (the writer's own bound).
    init(bed: PatroniBed, label: String, seconds: Int) throws {
        let directory = bed.mesh.root.appendingPathComponent("writer-\(label)").path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        self.output = "\(directory)/outcomes"
        self.stopFile = "\(directory)/stop"
        let dsn =
            "host=\(PatroniBed.rw.host) port=\(PatroniBed.rw.port) user=postgres password=\(PatroniBed.password) dbname=postgres connect_timeout=3"
        self.process = try SpawnedProcess(
            label: "writer-\(label)",
            executable: "/usr/bin/python3",
            arguments: [
                PatroniBed.repository.appendingPathComponent("scripts/bench/failover_bed.py").path, "writer", dsn, self.output,
                self.stopFile,
                "\(seconds)",
            ],
            launcher: bed.bed.launcher(PatroniBed.app),
            logURL: bed.mesh.logURL("writer-\(label)")
        )
    }

    /// Every outcome so far.
    func outcomes() -> [Outcome] {
        guard let text = try? String(contentsOfFile: self.output, encoding: .utf8) else { return [] }
        return text.split(separator: "\n").compactMap { line in
            let fields = line.split(separator: " ", maxSplits: 3)
            guard fields.count >= 3, let id = Int(fields[1]), let time = Double(fields[2]) else { return nil }
            return Outcome(id: id, time: time, node: fields[0] == "ack" && fields.count == 4 ? String(fields[3]) : nil)
        }
    }

    var acknowledged: [Outcome] { self.outcomes().filter { $0.node != nil } }

    /// Waits until `count` more writes than now were acknowledged by `node` (any when nil);
    /// false at the deadline.
    func waitForAcks(_ count: Int, on node: String? = nil, timeout: Duration) -> Bool {
        let before = self.acknowledged.filter { node == nil || $0.node == node }.count
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            if self.acknowledged.filter({ node == nil || $0.node == node }).count >= before + count { return true }
            Thread.sleep(forTimeInterval: 0.1)
        }
        return false
    }

    /// Waits until a write after `time` (epoch seconds) is acknowledged by another node than `old`
    /// (an address), polling every 0.2 s and calling `each` once per poll (a test reading `ro`
    /// meanwhile); that write, or nil at the deadline.
    func waitForWrite(after time: Double, awayFrom old: String, timeout: Duration, each: () -> Void = {}) -> Outcome? {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            each()
            if let moved = self.acknowledged.first(where: { $0.time > time && $0.node != old }) { return moved }
            Thread.sleep(forTimeInterval: 0.2)
        }
        return nil
    }

    /// Stops the writer and returns every outcome.
    @discardableResult
    func finish() -> [Outcome] {
        FileManager.default.createFile(atPath: self.stopFile, contents: nil)
        if self.process.waitForExit(timeout: .seconds(10)) == nil { self.process.kill9() }
        return self.outcomes()
    }

    /// How long writes were refused after `from` (a kill, a cut): from then until the first write
    /// acknowledged by another node than `old`; nil if none was.
    static func refusal(after from: Double, awayFrom old: String, in outcomes: [Outcome]) -> Double? {
        outcomes.first { $0.time > from && $0.node != nil && $0.node != old }.map { $0.time - from }
    }

    /// The longest wait between two acknowledged writes within `from...to`, counting from `from`:
    /// how long a planned move (a switchover) kept writes waiting.
    static func longestPause(from: Double, to: Double, in outcomes: [Outcome]) -> Double {
        var last = from
        var longest = 0.0
        for outcome in outcomes where outcome.node != nil && outcome.time > from && outcome.time <= to {
            longest = max(longest, outcome.time - last)
            last = outcome.time
        }
        return longest
    }

    /// The nodes that acknowledged writes, one entry per run of consecutive acknowledgements by
    /// the same node: one more than the failovers a test caused, unless two nodes took writes at
    /// the same time (their acknowledgements would alternate).
    static func writers(in outcomes: [Outcome]) -> [String] {
        var runs: [String] = []
        for outcome in outcomes {
            guard let node = outcome.node, runs.last != node else { continue }
            runs.append(node)
        }
        return runs
    }
}
