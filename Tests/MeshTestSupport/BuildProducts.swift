import Foundation

/// Finds the executables SwiftPM built next to the test bundle (e.g. `.build/debug/meshd`), so the
/// tests run the very binaries of this build rather than whatever is on PATH.
public enum BuildProducts {
    /// The directory holding the running xctest executable and its sibling products.
    public static let directory: URL = {
        let exe = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
        var dir = URL(fileURLWithPath: exe).deletingLastPathComponent()
        // On Linux the bundle is an executable in the products dir; on Darwin it is Foo.xctest/Contents/MacOS/Foo.
        while dir.path.contains(".xctest") { dir.deleteLastPathComponent() }
        return dir
    }()

    public static var meshd: URL { self.directory.appendingPathComponent("meshd") }
    public static var meshctl: URL { self.directory.appendingPathComponent("meshctl") }

    /// The path of a built product, or `Missing` telling how to build it.
    public static func path(_ name: String) throws -> String {
        let path = self.directory.appendingPathComponent(name).path
        guard FileManager.default.isExecutableFile(atPath: path) else { throw Missing(path: path) }
        return path
    }

    public struct Missing: Error, CustomStringConvertible {
        public var path: String
        public var description: String { "\(self.path) is not built; run 'swift build --build-tests' (it builds the executables too)" }
    }
}
