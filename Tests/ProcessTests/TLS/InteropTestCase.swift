import Foundation
import MeshConfig
import MeshTLS
import MeshTestSupport
import XCTest

/// Base of the suites that put our TLS handler against real `openssl s_client` and `s_server`: one
/// PKI per suite from `meshctl pki` (mesh "demo": db1, db2, app1, with its CRL) plus the CA of
/// another mesh under `other/`, removed after the suite's last test; the openssl processes a test
/// starts are stopped at its teardown.
class InteropTestCase: MeshTestCase {
    nonisolated(unsafe) private static var root: URL?
    nonisolated(unsafe) private static var sharedPKI: TestPKI?
    nonisolated(unsafe) private static var setupError: String?

    override class func setUp() {
        super.setUp()
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("tunnelmesh-interop-\(UUID().uuidString.prefix(8))")
        self.root = root
        do {
            let pki = try TestPKI(mesh: "demo", dir: root.appendingPathComponent("pki"))
            for node in ["db1", "db2", "app1"] { try pki.issue(node) }
            _ = try TestPKI(mesh: "demo", dir: root.appendingPathComponent("pki/other"))
            self.sharedPKI = pki
        } catch {
            self.setupError = "\(error)"
        }
    }

    override func setUpWithError() throws {
        try super.setUpWithError()
        if let problem = Self.setupError { throw SpawnedProcess.Failure(description: "the suite's PKI could not be made: \(problem)") }
    }

    override class func tearDown() {
        if let root { try? FileManager.default.removeItem(at: root) }
        self.root = nil
        self.sharedPKI = nil
        self.setupError = nil
        super.tearDown()
    }

    /// Set whenever a test runs: setUpWithError stops the test when it could not be made.
    var pki: TestPKI { Self.sharedPKI! }

    /// `openssl ARGS` with a pipe on its stdin, stopped at teardown.
    func openssl(_ arguments: [String]) throws -> SpawnedProcess {
        let process = try SpawnedProcess(label: "openssl", executable: "/usr/bin/openssl", arguments: arguments, interactive: true)
        self.addCleanup { process.stop() }
        return process
    }
}

extension TestPKI {
    /// A file in the PKI directory, by name (`ca.pem`, `db1.key`, `other/ca.pem`).
    func path(_ name: String) -> String { self.dir.appendingPathComponent(name).path }

    /// A mesh TLS context for `node`, as meshd makes it.
    func context(_ role: TLSContext.Role, _ node: String, crl: Bool = false) throws -> TLSContext {
        try TLSContext(
            role: role,
            files: TLSFiles(ca: self.caPEM.path, cert: self.cert(node).path, key: self.key(node).path, crl: crl ? self.crlPEM.path : nil)
        )
    }
}
