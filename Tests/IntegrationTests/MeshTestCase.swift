import Foundation
import MeshTestSupport
import NIOCore
import NIOPosix
import XCTest

/// Base class of the integration tests: owns the event loops, echo servers and meshes a test makes,
/// and stops and closes all of them in tearDown whether the test passed or not. On failure the
/// meshd logs are printed and the temp directory is kept for a look.
class MeshTestCase: XCTestCase {
    private(set) var group: MultiThreadedEventLoopGroup!
    private var meshes: [TestMesh] = []
    private var cleanups: [() -> Void] = []

    override func setUpWithError() throws {
        try super.setUpWithError()
        for binary in [BuildProducts.meshd, BuildProducts.meshctl] {
            guard FileManager.default.isExecutableFile(atPath: binary.path) else {
                throw XCTSkip("missing \(binary.path): build the products first (swift build --build-tests)")
            }
        }
        self.group = MultiThreadedEventLoopGroup(numberOfThreads: 2)
    }

    override func tearDown() {
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

    func makeMesh(range: Int, nodes: [String], mesh: String = "itest", tunnel: MeshFile.Tunnel? = nil,
                  withoutCertificates: Set<String> = []) throws -> TestMesh {
        let made = try TestMesh(range: range, nodes: nodes, mesh: mesh, tunnel: tunnel, withoutCertificates: withoutCertificates)
        self.meshes.append(made)
        return made
    }

    func makeEchoServer() throws -> EchoServer {
        let server = try EchoServer(group: self.group)
        self.cleanups.append { server.close() }
        return server
    }

    func makeTrickleEchoServer() throws -> TrickleEchoServer {
        let server = try TrickleEchoServer(group: self.group)
        self.cleanups.append { server.close() }
        return server
    }

    func makeHeldReader() throws -> HeldReaderServer {
        let server = try HeldReaderServer(group: self.group)
        self.cleanups.append { server.close() }
        return server
    }

    /// Runs `body` at teardown (for processes and sockets a test makes outside a mesh).
    func addCleanup(_ body: @escaping () -> Void) {
        self.cleanups.append(body)
    }

    /// `count` bytes from /dev/urandom.
    func randomBytes(_ count: Int) throws -> ByteBuffer {
        let handle = try XCTUnwrap(FileHandle(forReadingAtPath: "/dev/urandom"))
        defer { try? handle.close() }
        var buffer = ByteBufferAllocator().buffer(capacity: count)
        while buffer.readableBytes < count {
            let chunk = try XCTUnwrap(try handle.read(upToCount: min(1 << 20, count - buffer.readableBytes)))
            buffer.writeBytes(chunk)
        }
        return buffer
    }

    /// One small echo through host:port; true when it came back intact and ended with EOF.
    func echoWorks(host: String, port: Int, size: Int = 1024, timeout: Duration = .seconds(5)) -> Bool {
        guard let payload = try? self.randomBytes(size) else { return false }
        let outcome = StreamClient.exchange(group: self.group, host: host, port: port, payload: payload, timeout: timeout)
        return outcome.end == .eof && outcome.received == payload
    }

    /// Polls `echoWorks` until it succeeds or `timeout` passes; the time it took, or nil.
    func waitForEcho(host: String, port: Int, timeout: Duration) -> Duration? {
        let start = ContinuousClock.now
        while ContinuousClock.now - start < timeout {
            if self.echoWorks(host: host, port: port, timeout: .seconds(2)) { return ContinuousClock.now - start }
            Thread.sleep(forTimeInterval: 0.05)
        }
        return nil
    }
}

/// Waits for a future at most `timeout`; its value, or nil on failure or timeout.
func waitBounded<Value: Sendable>(_ future: EventLoopFuture<Value>, timeout: Duration) -> Value? {
    let semaphore = DispatchSemaphore(value: 0)
    future.whenComplete { _ in semaphore.signal() }
    let seconds = Double(timeout.components.seconds) + Double(timeout.components.attoseconds) / 1e18
    guard semaphore.wait(timeout: .now() + seconds) == .success else { return nil }
    return try? future.wait()
}

extension Duration {
    /// Milliseconds, for printed measurements.
    var milliseconds: Int {
        Int(self.components.seconds * 1000 + self.components.attoseconds / 1_000_000_000_000_000)
    }
}
