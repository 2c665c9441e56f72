import Foundation
import MeshTestSupport
import XCTest

/// Base class of the tests that run a mesh across network namespaces (`NetnsBed`): makes the bed,
/// the mesh in it and echo servers inside nodes' namespaces, and tears all of it down in order
/// (meshd processes, then servers, then namespaces) whether the test passed or not. Skips, with the
/// bed's message, where namespaces cannot be made.
class NetnsTestCase: MeshTestCase {
    /// A bed with `nodes`, deleted at teardown (after everything made later is stopped).
    func makeBed(nodes: [String]) throws -> NetnsBed {
        let bed = try NetnsBed(nodes: nodes)
        self.addCleanup { bed.tearDown() }
        return bed
    }

    /// A mesh of every node of `bed`, each meshd run inside its node's namespace. Its processes are
    /// stopped at teardown; on failure their logs are printed and the directory kept.
    func makeMesh(bed: NetnsBed, tunnel: MeshFile.Tunnel? = nil) throws -> TestMesh {
        self.track(try TestMesh(addressing: .namespaces(bed), nodes: bed.nodes, tunnel: tunnel))
    }

    /// An echo server (half-close aware) inside `node`'s namespace, run by this process: on
    /// 127.0.0.1 at a free port, or at `address` (a 127.0.0.0/8 address and port) when given.
    func makeEchoServer(in bed: NetnsBed, on node: String, at address: (host: in_addr_t, port: UInt16)? = nil) throws -> EchoServer {
        let fd =
            try address.map { try NetworkNamespace.loopbackListener(in: bed.namespace(node), address: $0.host, port: $0.port) }
            ?? NetworkNamespace.loopbackListener(in: bed.namespace(node))
        let server: EchoServer
        do {
            server = try EchoServer(group: self.group, boundSocket: fd)
        } catch {
            close(fd)
            throw error
        }
        self.addCleanup { server.close() }
        return server
    }

    /// One checksummed echo of `size` bytes to host:port from inside `node`'s namespace.
    func echo(
        in bed: NetnsBed,
        from node: String,
        host: String,
        port: Int,
        size: Int = 4096,
        timeout: Duration = .seconds(5)
    ) -> ChecksummedEcho.Verdict {
        do {
            return try NetworkNamespace.run(in: bed.namespace(node)) {
                var generator = SystemRandomNumberGenerator()
                let payload = ChecksummedEcho.payload(size: size, using: &generator)
                let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
                guard fd >= 0 else { return .errored("socket: \(String(cString: strerror(errno)))", echoed: 0) }
                return ChecksummedEcho.run(fd: fd, host: host, port: port, payload: payload, timeout: timeout)
            }
        } catch {
            return .errored("\(error)", echoed: 0)
        }
    }

    /// Polls `echo` until one completes or `timeout` passes; the time it took, or nil.
    func waitForEcho(in bed: NetnsBed, from node: String, host: String, port: Int, timeout: Duration) -> Duration? {
        let start = ContinuousClock.now
        while ContinuousClock.now - start < timeout {
            if self.echo(in: bed, from: node, host: host, port: port, timeout: .seconds(2)) == .completed {
                return ContinuousClock.now - start
            }
            Thread.sleep(forTimeInterval: 0.05)
        }
        return nil
    }

    /// Polls the logs of several processes at once until each shows a line (after its mark) with
    /// its text; for each, the time from `start` to when the line was first seen, or nil at the
    /// deadline. Polling all together keeps one slow watch from inflating another's time.
    func waitForLogs(
        _ watches: [(process: SpawnedProcess, mark: Int, text: String)],
        from start: ContinuousClock.Instant,
        timeout: Duration
    ) -> [Duration?] {
        var seen = [Duration?](repeating: nil, count: watches.count)
        let deadline = start + timeout
        while seen.contains(where: { $0 == nil }), ContinuousClock.now < deadline {
            for (index, watch) in watches.enumerated() where seen[index] == nil {
                if watch.process.log(after: watch.mark).contains(watch.text) { seen[index] = ContinuousClock.now - start }
            }
            Thread.sleep(forTimeInterval: 0.02)
        }
        return seen
    }

    /// Each peer's `state` as `meshctl peers --json` on `node` reports it (empty if unreachable).
    func peerStates(seenBy node: String, in mesh: TestMesh) -> [String: String] {
        guard let result = try? mesh.meshctl(node, ["peers", "--json"]), result.status <= 1,
            let peers = (try? JSONSerialization.jsonObject(with: Data(result.stdout.utf8))) as? [[String: Any]]
        else { return [:] }
        var states: [String: String] = [:]
        for peer in peers {
            if let name = peer["name"] as? String, let state = peer["state"] as? String { states[name] = state }
        }
        return states
    }
}
