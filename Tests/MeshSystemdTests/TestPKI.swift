import Foundation
import MeshTestSupport

/// A throwaway certificate authority and node certificates made by the real `meshctl pki`.
struct TestPKI {
    struct Failure: Error, CustomStringConvertible {
        var description: String
    }

    let dir: URL

    /// `meshctl pki init --mesh MESH --dir DIR`: a new CA, key and empty CRL.
    init(mesh: String, dir: URL) throws {
        self.dir = dir
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        try Self.meshctl(["pki", "init", "--mesh", mesh, "--dir", dir.path])
    }

    var caPEM: URL { self.dir.appendingPathComponent("ca.pem") }
    func cert(_ node: String) -> URL { self.dir.appendingPathComponent("\(node).pem") }
    func key(_ node: String) -> URL { self.dir.appendingPathComponent("\(node).key") }

    /// `meshctl pki issue NODE`.
    func issue(_ node: String) throws {
        try Self.meshctl(["pki", "issue", node, "--dir", self.dir.path])
    }

    @discardableResult
    static func meshctl(_ args: [String]) throws -> CommandResult {
        let result = try Command.run(BuildProducts.meshctl.path, args, timeout: .seconds(30))
        guard result.status == 0, !result.timedOut else {
            throw Failure(description: "meshctl \(args.joined(separator: " ")) exited \(result.status): \(result.output)")
        }
        return result
    }
}
