import Foundation
import MeshTestSupport
import XCTest

/// The integrity soak: 64 clients at once stream checksummed random payloads through forwards
/// across a namespaced mesh and verify every echo, while a chaos loop kills (-9), cuts off and
/// restarts nodes, clients' and servers' alike. Every stream must either complete with the right
/// checksum or end with an error the client sees; a clean EOF before the whole echo (a silent
/// truncation) or a wrong byte fails the test. Runs `SOAK_SECONDS` seconds. The default, 25 s, is
/// what `scripts/test.sh` gives it: about five faults, every node likely hit once, thousands of
/// verified streams, enough to catch a truncation or corruption that happens on most faults but not
/// a rare one; `scripts/soak.sh` runs it for 10 minutes (or as long as asked) for that. Counts and a
/// `RESULT soak ...` line are printed.
final class IntegritySoakTests: NetnsTestCase {
    private static let clients = 64
    /// A stream that neither ends nor errs within this long counts as stalled.
    private static let streamDeadline: Duration = .seconds(30)

    func testStreamsUnderKillsCutsAndRestartsNeverEndSilentlyShortOrWrong() throws {
        let environment = ProcessInfo.processInfo.environment
        let seconds = environment["SOAK_SECONDS"].flatMap(Int.init) ?? 25
        let seed = environment["SOAK_SEED"].flatMap(UInt64.init) ?? UInt64.random(in: 1...UInt64.max)
        let nodes = ["app1", "app2", "db1", "db2"]
        let bed = try self.makeBed(nodes: nodes)
        let mesh = try self.makeMesh(bed: bed)
        let echo1 = try self.makeEchoServer(in: bed, on: "db1")
        let echo2 = try self.makeEchoServer(in: bed, on: "db2")
        mesh.addService("echo", on: ["db1": echo1.endpoint, "db2": echo2.endpoint], allow: ["app1", "app2"])
        var forwards: [SoakForward] = []
        for app in ["app1", "app2"] {
            for db in ["db1", "db2"] {
                let listen = try mesh.addForward(on: app, to: "echo@\(db)")
                forwards.append(SoakForward(app: app, namespace: bed.namespace(app), target: db, host: listen.host, port: listen.port))
            }
        }
        for node in nodes { _ = try mesh.start(node) }
        for app in ["app1", "app2"] {
            for db in ["db1", "db2"] {
                guard mesh.waitUp(mesh.latest(app)!, peer: db) else { return }
            }
        }
        for forward in forwards {
            guard self.waitForEcho(in: bed, from: forward.app, host: forward.host, port: forward.port, timeout: .seconds(15)) != nil else {
                return XCTFail("\(forward) does not echo before the soak\n\(mesh.allLogs())")
            }
        }
        print("soak: \(Self.clients) clients, \(seconds) s, seed \(seed) (SOAK_SEED=\(seed) replays the fault schedule)")

        let tally = SoakTally()
        let workers = DispatchGroup()
        for index in 0..<Self.clients {
            let mine = forwards.filter { $0.app == (index % 2 == 0 ? "app1" : "app2") }
            workers.enter()
            let thread = Thread {
                defer { workers.leave() }
                Self.runClient(forwards: mine, seed: seed &+ UInt64(index), tally: tally)
            }
            thread.start()
        }
        var chaos = SplitMix64(seed: seed)
        var faults: [String] = []
        // Also on a thrown fault step: no client thread outlives the test.
        defer {
            tally.stop()
            _ = workers.wait(timeout: .now() + .seconds(Int(Self.streamDeadline.components.seconds) + 30))
        }

        let start = ContinuousClock.now
        let end = start + .seconds(seconds)
        func at() -> String { String(format: "%.1f s", Double((ContinuousClock.now - start).milliseconds) / 1000) }
        func pause(_ range: ClosedRange<Double>) {
            Thread.sleep(forTimeInterval: Double.random(in: range, using: &chaos))
        }
        while ContinuousClock.now < end {
            let node = nodes.randomElement(using: &chaos)!
            if Bool.random(using: &chaos) {
                faults.append("\(at()) kill -9 \(node)")
                mesh.latest(node)!.kill9()
                pause(0.5...3)
                faults.append("\(at()) restart \(node)")
                try mesh.restart(node)
            } else {
                faults.append("\(at()) cut \(node)")
                try bed.cutOff(node)
                pause(1...6)
                faults.append("\(at()) heal \(node)")
                try bed.heal(node)
            }
            pause(1...3)
        }
        tally.stop()
        XCTAssertEqual(
            workers.wait(timeout: .now() + .seconds(Int(Self.streamDeadline.components.seconds) + 30)),
            .success,
            "soak clients did not finish within their deadline after the soak ended"
        )

        // Healed and restarted, the whole mesh works again.
        var notBack: [String] = []
        for forward in forwards
        where self.waitForEcho(in: bed, from: forward.app, host: forward.host, port: forward.port, timeout: .seconds(15)) == nil {
            notBack.append("\(forward)")
        }
        XCTAssertEqual(notBack, [], "forwards that did not echo again within 15 s after the soak\n\(mesh.allLogs())")

        let counts = tally.snapshot()
        print("soak faults: \(faults.joined(separator: "; "))")
        print(
            "soak errors seen by clients: \(counts.errorKinds.sorted { $0.value > $1.value }.map { "\($0.key) x\($0.value)" }.joined(separator: ", "))"
        )
        for bad in counts.bad { print("soak BAD stream: \(bad)") }
        print(
            "RESULT soak seconds=\(seconds) clients=\(Self.clients) streams=\(counts.streams) completed=\(counts.completed) "
                + "errored=\(counts.errored) truncated=\(counts.truncated) corrupted=\(counts.corrupted) stalled=\(counts.stalled) "
                + "verified_mib=\(counts.verifiedBytes >> 20) faults=\(faults.count / 2) kills=\(faults.filter { $0.contains("kill -9") }.count) "
                + "cuts=\(faults.filter { $0.contains(" cut ") }.count) seed=\(seed)"
        )
        XCTAssertEqual(counts.truncated, 0, "streams that ended with a clean EOF before their whole echo (silent truncation)")
        XCTAssertEqual(counts.corrupted, 0, "streams whose echo differed from what was sent")
        XCTAssertEqual(counts.stalled, 0, "streams that neither completed nor failed within \(Self.streamDeadline)")
        XCTAssertGreaterThan(counts.completed, 0, "no stream completed at all")
        XCTAssertGreaterThan(counts.errored, 0, "no stream saw an error: the faults never hit a live stream")
    }

    /// One client thread: moves itself into its app node's namespace (for good; the thread ends
    /// with the soak) and runs streams of 1 KiB to 256 KiB back to back until the soak stops.
    private static func runClient(forwards: [SoakForward], seed: UInt64, tally: SoakTally) {
        do {
            try NetworkNamespace.enter(forwards[0].namespace)
        } catch {
            tally.record(.errored("client thread: \(error)", echoed: 0), forward: forwards[0], bytes: 0)
            return
        }
        var generator = SplitMix64(seed: seed)
        while !tally.stopped {
            let forward = forwards.randomElement(using: &generator)!
            let size = Int(exp2(Double.random(in: 10...18, using: &generator)))
            let payload = ChecksummedEcho.payload(size: size, using: &generator)
            let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
            guard fd >= 0 else {
                tally.record(.errored("socket: \(String(cString: strerror(errno)))", echoed: 0), forward: forward, bytes: size)
                Thread.sleep(forTimeInterval: 0.1)
                continue
            }
            let verdict = ChecksummedEcho.run(
                fd: fd,
                host: forward.host,
                port: forward.port,
                payload: payload,
                timeout: self.streamDeadline
            )
            tally.record(verdict, forward: forward, bytes: size)
            // A refused connect returns at once: do not spin while the node is down.
            if case .errored = verdict { Thread.sleep(forTimeInterval: 0.05) }
        }
    }
}

/// One forward the soak's clients use: on `app`, to `echo@target`.
struct SoakForward: Sendable, CustomStringConvertible {
    var app: String
    var namespace: String
    var target: String
    var host: String
    var port: Int

    var description: String { "forward on \(self.app) \(self.host):\(self.port) -> echo@\(self.target)" }
}

/// The soak's counters, shared by the client threads.
final class SoakTally: @unchecked Sendable {
    struct Counts {
        var streams = 0
        var completed = 0
        var errored = 0
        var truncated = 0
        var corrupted = 0
        var stalled = 0
        var verifiedBytes = 0
        /// Errors clients saw, by kind ("recv: Connection reset by peer", "connect: ...").
        var errorKinds: [String: Int] = [:]
        /// The first few streams that ended badly, described.
        var bad: [String] = []
    }

    private let lock = NSLock()
    private var counts = Counts()
    private var stopFlag = false
    private let started = ContinuousClock.now

    var stopped: Bool { self.lock.withLock { self.stopFlag } }

    func stop() { self.lock.withLock { self.stopFlag = true } }

    func record(_ verdict: ChecksummedEcho.Verdict, forward: SoakForward, bytes: Int) {
        let at = Double((ContinuousClock.now - self.started).milliseconds) / 1000
        self.lock.withLock {
            self.counts.streams += 1
            switch verdict {
            case .completed:
                self.counts.completed += 1
                self.counts.verifiedBytes += bytes
                return
            case .errored(let text, _):
                self.counts.errored += 1
                self.counts.errorKinds[text, default: 0] += 1
                return
            case .truncated: self.counts.truncated += 1
            case .corrupted: self.counts.corrupted += 1
            case .stalled: self.counts.stalled += 1
            }
            if self.counts.bad.count < 20 {
                self.counts.bad.append(String(format: "%.1f s into the soak: ", at) + "\(forward): \(verdict)")
            }
        }
    }

    func snapshot() -> Counts { self.lock.withLock { self.counts } }
}
