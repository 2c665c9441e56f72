import Foundation
import MeshConfig
import NIOCore
import NIOPosix
import XCTest

/// Base class of the tests that start processes: owns the event loops, meshes, servers and sockets
/// a test makes, and stops and closes all of them in tearDown whether the test passed or not
/// (meshes first, then the other cleanups newest first). On failure the logs are printed and the
/// temp directories are kept for a look.
open class MeshTestCase: XCTestCase {
    public private(set) var group: MultiThreadedEventLoopGroup!
    private var meshes: [TestMesh] = []
    private var cleanups: [() -> Void] = []

    open override func setUpWithError() throws {
        try super.setUpWithError()
        for binary in [BuildProducts.meshd, BuildProducts.meshctl] {
            guard FileManager.default.isExecutableFile(atPath: binary.path) else {
                throw XCTSkip("missing \(binary.path): build the products first (swift build --build-tests)")
            }
        }
        self.group = MultiThreadedEventLoopGroup(numberOfThreads: 2)
    }

    open override func tearDown() {
        for mesh in self.meshes { mesh.stopAll() }
        for cleanup in self.cleanups.reversed() { cleanup() }
        let failed = (self.testRun?.totalFailureCount ?? 0) > 0
        for mesh in self.meshes {
            if failed {
                print("kept \(mesh.root.path) for inspection\n\(mesh.allLogs())")
            } else {
                mesh.removeFiles()
            }
        }
        self.meshes = []
        self.cleanups = []
        try? self.group?.syncShutdownGracefully()
        self.group = nil
        super.tearDown()
    }

    public func makeMesh(
        range: Int,
        nodes: [String],
        mesh: String = "itest",
        tunnel: MeshFile.Tunnel? = nil,
        withoutCertificates: Set<String> = []
    ) throws -> TestMesh {
        self.track(try TestMesh(range: range, nodes: nodes, mesh: mesh, tunnel: tunnel, withoutCertificates: withoutCertificates))
    }

    /// Takes a mesh made elsewhere (in namespaces, say) into this test's teardown.
    @discardableResult
    public func track(_ mesh: TestMesh) -> TestMesh {
        self.meshes.append(mesh)
        return mesh
    }

    public func makeEchoServer() throws -> EchoServer {
        let server = try EchoServer(group: self.group)
        self.addCleanup { server.close() }
        return server
    }

    /// A listening socket the test holds, as systemd holds a `.socket` unit's.
    public func makeListener(host: String, port: Int) throws -> TCPSocket {
        let socket = try TCPSocket.listen(host: host, port: port)
        self.addCleanup { socket.close() }
        return socket
    }

    /// Runs `body` at teardown (for processes and sockets a test makes outside a mesh).
    public func addCleanup(_ body: @escaping () -> Void) {
        self.cleanups.append(body)
    }

    /// `count` bytes from /dev/urandom, read in bulk (a generator called per word is slow in a
    /// debug build: 3 x 64 MiB took 12 s that way).
    public func randomBytes(_ count: Int) -> [UInt8] {
        var bytes = [UInt8](repeating: 0, count: count)
        guard count > 0 else { return bytes }
        let fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC)
        precondition(fd >= 0, "cannot open /dev/urandom")
        defer { close(fd) }
        bytes.withUnsafeMutableBytes { raw in
            var offset = 0
            while offset < raw.count {  // each read returns up to 32 MiB
                let n = read(fd, raw.baseAddress! + offset, raw.count - offset)
                precondition(n > 0, "reading /dev/urandom failed")
                offset += n
            }
        }
        return bytes
    }

    /// `count` random bytes in a ByteBuffer, for the NIO clients.
    public func randomBuffer(_ count: Int) -> ByteBuffer {
        ByteBuffer(bytes: self.randomBytes(count))
    }

    /// One small echo through host:port; true when it came back intact and ended with EOF.
    public func echoWorks(host: String, port: Int, size: Int = 1024, timeout: Duration = .seconds(5)) -> Bool {
        let payload = self.randomBytes(size)
        let outcome = TCPSocket.echo(host: host, port: port, payload: payload, timeout: timeout)
        return outcome.end == .eof && outcome.data == payload
    }

    /// Polls `echoWorks` until it succeeds or `timeout` passes; the time it took, or nil.
    @discardableResult
    public func waitForEcho(host: String, port: Int, timeout: Duration) -> Duration? {
        self.pollUntil(timeout: timeout, every: .milliseconds(50)) { self.echoWorks(host: host, port: port, timeout: .seconds(2)) }
    }

    /// Checks `condition` every `interval` until it holds or `timeout` passes (and once more at the
    /// deadline): how long it took to hold, or nil if it never did.
    @discardableResult
    public func pollUntil(timeout: Duration, every interval: Duration = .milliseconds(20), _ condition: () -> Bool) -> Duration? {
        let start = ContinuousClock.now
        while ContinuousClock.now - start < timeout {
            if condition() { return ContinuousClock.now - start }
            Thread.sleep(forTimeInterval: interval.timeInterval)
        }
        return condition() ? ContinuousClock.now - start : nil
    }
}

/// Waits for a future at most `timeout`; its value, or nil on failure or timeout.
public func waitBounded<Value: Sendable>(_ future: EventLoopFuture<Value>, timeout: Duration) -> Value? {
    let semaphore = DispatchSemaphore(value: 0)
    future.whenComplete { _ in semaphore.signal() }
    guard semaphore.wait(timeout: .now() + timeout.timeInterval) == .success else { return nil }
    return try? future.wait()
}

extension Duration {
    /// Milliseconds, for printed measurements.
    public var milliseconds: Int {
        Int(self.components.seconds * 1000 + self.components.attoseconds / 1_000_000_000_000_000)
    }

    /// Seconds as a TimeInterval, for the Dispatch and Foundation APIs that take one.
    public var timeInterval: Double {
        Double(self.components.seconds) + Double(self.components.attoseconds) / 1e18
    }
}
