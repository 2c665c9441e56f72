import Foundation

extension MeshTestCase {
    /// The smallest mesh that carries traffic, declared in `mesh`'s file: an in-process echo service
    /// on `server` that `client` may open, and a forward on `client` to it. Returns the forward's
    /// address.
    public func addEchoForward(_ mesh: TestMesh, client: String = "app1", server: String = "db1") throws -> (host: String, port: Int) {
        let echo = try self.makeEchoServer()
        mesh.addService("echo", on: [server: echo.endpoint], allow: [client])
        return try mesh.addForward(on: client, to: "echo@\(server)")
    }

    /// Starts `client`'s and `server`'s meshd and waits until `client` reports its tunnel to
    /// `server` up; both processes, or nil when it did not come up (the test has failed then).
    public func startPair(
        _ mesh: TestMesh,
        client: String = "app1",
        server: String = "db1",
        file: StaticString = #filePath,
        line: UInt = #line
    ) throws -> (SpawnedProcess, SpawnedProcess)? {
        let first = try mesh.start(client)
        let second = try mesh.start(server)
        guard mesh.waitUp(first, peer: server, file: file, line: line) else { return nil }
        return (first, second)
    }
}
