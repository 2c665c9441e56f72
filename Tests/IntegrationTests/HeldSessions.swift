import Foundation
import MeshTestSupport

/// Long-lived client sessions through app1's balancer, held across a switchover to see which
/// survive: a small psycopg2 program (Debian's python3-psycopg2, as the failover writer uses) opens
/// them, and on each line it reads from stdin runs one query on every session and prints one line
/// per session: `ok INDEX NODE_ADDRESS` or `err INDEX MESSAGE`, then `done`.
final class HeldSessions {
    private static let program = """
        import sys, psycopg2
        dsns = sys.argv[1:]
        sessions = []
        for dsn in dsns:
            c = psycopg2.connect(dsn)
            c.autocommit = True
            sessions.append(c)
        for line in sys.stdin:
            for i, c in enumerate(sessions):
                try:
                    cur = c.cursor()
                    cur.execute("SELECT host(inet_server_addr())")
                    print(f"ok {i} {cur.fetchone()[0]}", flush=True)
                except Exception as e:
                    print(f"err {i} {' '.join(str(e).split())[:120]}", flush=True)
            print("done", flush=True)
        """

    let process: SpawnedProcess
    private var rounds = 0

    /// Opens one session per listener in `listeners` (as `(host, port)` inside app1's namespace).
    init(bed: PatroniBed, label: String, listeners: [(host: String, port: Int)]) throws {
        let script = bed.mesh.root.appendingPathComponent("held-sessions.py")
        try Self.program.write(to: script, atomically: true, encoding: .utf8)
        let dsns = listeners.map {
            "host=\($0.host) port=\($0.port) user=postgres password=\(PatroniBed.password) dbname=postgres connect_timeout=5"
        }
        self.process = try SpawnedProcess(
            label: "sessions-\(label)",
            executable: "/usr/bin/python3",
            arguments: [script.path] + dsns,
            launcher: bed.bed.launcher(PatroniBed.app),
            interactive: true,
            logURL: bed.mesh.logURL("sessions-\(label)")
        )
    }

    /// Runs one query on every session: index -> the node address it answered from, or nil for
    /// an error (a cut session).
    func query(timeout: Duration = .seconds(15)) -> [Int: String?] {
        self.rounds += 1
        let mark = self.process.logMark()
        self.process.send("go\n")
        guard self.process.waitForLog(containing: "done", after: mark, timeout: timeout) != nil else { return [:] }
        var answers: [Int: String?] = [:]
        for line in self.process.log(after: mark).split(separator: "\n") {
            let fields = line.split(separator: " ", maxSplits: 2)
            guard fields.count == 3, let index = Int(fields[1]) else { continue }
            answers[index] = fields[0] == "ok" ? String(fields[2]) : nil
        }
        return answers
    }

    func close() {
        self.process.closeInput()
        if self.process.waitForExit(timeout: .seconds(5)) == nil { self.process.kill9() }
    }
}
