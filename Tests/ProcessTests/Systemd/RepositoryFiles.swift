import Foundation

/// Paths in this repository (units/, the generator, scripts/, mesh.json), found from this source file's location.
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
    static var generator: URL { self.units.appendingPathComponent("meshd-generator") }
    static var installScript: URL { self.root.appendingPathComponent("scripts/install.sh") }
    static var exampleConfig: URL { self.root.appendingPathComponent("mesh.json") }
}
