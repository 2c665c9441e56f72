import Foundation
import MeshTestSupport
import NIOCore
import NIOPosix
import XCTest

/// Base class of the process tests: owns the event loops, meshes, notify sockets and echo servers a
/// test makes, and stops or closes all of them in tearDown whether the test passed or not. On
/// failure the logs are printed and the temp directory is kept for a look.
class SystemdTestCase: XCTestCase {
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
        self.group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
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

    func makeMesh(range: Int, nodes: [String]) throws -> TestMesh {
        let made = try TestMesh(range: range, nodes: nodes)
        self.meshes.append(made)
        return made
    }

    func makeEchoServer() throws -> EchoServer {
        let server = try EchoServer(group: self.group)
        self.cleanups.append { server.close() }
        return server
    }

    func makeNotifySocket() throws -> NotifySocket {
        let socket = try NotifySocket()
        self.cleanups.append { socket.close() }
        return socket
    }

    /// A listening socket the test holds, as systemd holds a `.socket` unit's.
    func makeListener(host: String, port: Int) throws -> TCPSocket {
        let socket = try TCPSocket.listen(host: host, port: port)
        self.cleanups.append { socket.close() }
        return socket
    }

    /// Polls an echo through host:port until it comes back intact or `timeout` passes.
    func waitForEcho(host: String, port: Int, timeout: Duration) -> Bool {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            let payload = randomBytes(2048)
            let outcome = TCPSocket.echo(host: host, port: port, payload: payload, timeout: .seconds(3))
            if outcome.end == .eof, outcome.data == payload { return true }
            Thread.sleep(forTimeInterval: 0.1)
        }
        return false
    }
}
