import Foundation
import MeshTestSupport
import XCTest

/// Shared by the PKI tests: a private temporary directory and real child processes (openssl, meshctl)
/// run in it with a deadline.
enum PKITests {
    /// A fresh directory under the system temp dir; the caller removes it.
    static func makeTemporaryDirectory() throws -> URL {
        URL(fileURLWithPath: try TemporaryDirectory.make(prefix: "tunnelmesh-pki"))
    }

    /// Runs `executable` with `arguments` in `directory` (plain output: NO_COLOR), bounded by `timeout`.
    static func run(
        _ executable: String,
        _ arguments: [String],
        in directory: URL,
        timeout: Duration = .seconds(30)
    ) throws -> CommandResult {
        var environment = ProcessInfo.processInfo.environment
        environment["NO_COLOR"] = "1"
        return try Command.run(executable, arguments, environment: environment, directory: directory, timeout: timeout)
    }

    static let openssl: String = {
        for candidate in ["/usr/bin/openssl", "/usr/local/bin/openssl", "/bin/openssl"]
        where FileManager.default.isExecutableFile(atPath: candidate) {
            return candidate
        }
        return "/usr/bin/openssl"
    }()

    /// `openssl verify -CAfile ca.pem [-crl_check -CRLfile crl.pem] cert`.
    static func verify(_ certificate: String, in directory: URL, crl: Bool = true) throws -> CommandResult {
        var arguments = ["verify", "-CAfile", "ca.pem"]
        if crl { arguments += ["-crl_check", "-CRLfile", "crl.pem"] }
        return try run(openssl, arguments + [certificate], in: directory)
    }

    static func mode(of url: URL) throws -> Int {
        let attributes = try FileManager.default.attributesOfItem(atPath: url.path)
        return (attributes[.posixPermissions] as? NSNumber)?.intValue ?? -1
    }
}
