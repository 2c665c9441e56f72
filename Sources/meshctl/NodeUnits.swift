import Foundation
import MeshConfig

/// Every socket unit of one node, rendered in memory before anything is written, so a problem in
/// any listener leaves the generator's directory without a partial set.
struct NodeUnits {
    var units: [SocketUnit]
    /// Listeners with no unit (a host name), one line each.
    var notes: [String]

    init(config: MeshConfiguration, node: String) throws(ConfigError) {
        // The absolute path, as systemd's SourcePath= wants and as meshd.service passes it.
        let configFile = config.directory + "/" + (config.file as NSString).lastPathComponent
        self.units = []
        self.notes = []
        for listener in NodeListener.all(on: node, in: config) {
            switch try SocketUnit.render(listener, node: node, config: config, configFile: configFile) {
            case .unit(let unit): self.units.append(unit)
            case .skipped(let note): self.notes.append(note)
            }
        }
    }

    /// What `meshctl units` prints: each unit after a `# <file name>` line.
    var text: String {
        self.units.map { "# \($0.fileName)\n\($0.text)" }.joined(separator: "\n")
    }

    /// The units that want every socket: `sockets.target`, so they listen from boot, and
    /// `meshd.service`, so that starting or restarting meshd starts a socket added since (after
    /// `systemctl daemon-reload`) instead of meshd binding that listener itself.
    static let wantedBy = ["sockets.target", "meshd.service"]

    /// Writes the units into a generator's output directory, with a `<unit>.wants/` link to each
    /// for every unit in `wantedBy`. A failed write removes what this call wrote.
    func write(to directory: String) throws {
        let fm = FileManager.default
        var written: [String] = []
        do {
            for unit in self.units {
                let path = directory + "/" + unit.fileName
                try Data(unit.text.utf8).write(to: URL(fileURLWithPath: path), options: .atomic)
                written.append(path)
                try fm.setAttributes([.posixPermissions: 0o644], ofItemAtPath: path)
                for wanting in Self.wantedBy {
                    let wants = directory + "/" + wanting + ".wants"
                    try fm.createDirectory(atPath: wants, withIntermediateDirectories: true)
                    let link = wants + "/" + unit.fileName
                    try? fm.removeItem(atPath: link)
                    try fm.createSymbolicLink(atPath: link, withDestinationPath: "../" + unit.fileName)
                    written.append(link)
                }
            }
        } catch {
            for path in written.reversed() { try? fm.removeItem(atPath: path) }
            throw MeshctlFailure(code: 1, message: "\(directory): cannot write the socket units: \(error.localizedDescription)")
        }
    }
}
