import Foundation

/// Finds the executables SwiftPM built next to the test bundle (e.g. `.build/debug/meshd`), so the
/// tests run the very binaries of this build rather than whatever is on PATH.
enum BuildProducts {
    /// The directory holding the running xctest executable and its sibling products.
    static let directory: URL = {
        let exe = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
        var dir = URL(fileURLWithPath: exe).deletingLastPathComponent()
        // On Linux the bundle is an executable in the products dir; on Darwin it is Foo.xctest/Contents/MacOS/Foo.
        while dir.path.contains(".xctest") { dir.deleteLastPathComponent() }
        return dir
    }()

    static var meshd: URL { self.directory.appendingPathComponent("meshd") }
    static var meshctl: URL { self.directory.appendingPathComponent("meshctl") }
}
