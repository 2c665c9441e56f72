import Foundation

/// Paths in this repository (units/, scripts/, mesh.json), found from this source file's location.
enum RepositoryFiles {
    static let root: URL = {
        // The nearest directory above this file that holds Package.swift.
        var directory = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        while directory.path != "/", !FileManager.default.fileExists(atPath: directory.appendingPathComponent("Package.swift").path) {
            directory.deleteLastPathComponent()
        }
        return directory
    }()

    static var units: URL { self.root.appendingPathComponent("units") }
    static var installScript: URL { self.root.appendingPathComponent("scripts/install.sh") }
    static var exampleConfig: URL { self.root.appendingPathComponent("mesh.json") }

    /// Every unit file in units/, sorted by name.
    static func unitFiles() throws -> [URL] {
        try FileManager.default.contentsOfDirectory(at: self.units, includingPropertiesForKeys: nil)
            .filter { $0.pathExtension == "service" || $0.pathExtension == "socket" }
            .sorted { $0.lastPathComponent < $1.lastPathComponent }
    }
}
