import ArgumentParser
import Foundation
import MeshConfig
import MeshTLS

/// `meshctl units`: this node's systemd socket units, rendered from mesh.json: printed, or written
/// into a generator's directory (`units/meshd-generator` runs `meshctl units --generator DIR...`
/// at boot and on `systemctl daemon-reload`).
struct UnitsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "units",
        abstract: "Print (or, as a systemd generator, write) this node's socket units, generated from mesh.json.",
        discussion: """
            One .socket unit per listener of the node: meshd.socket for the tunnel listener, meshd-<name>.socket \
            for forwards, balancer and same-address listeners (<name> escaped like systemd-escape, '-' kept), each \
            with the FileDescriptorName= meshd adopts it by. The node: --node, else MESHD_NODE, else MESHD_NODE or \
            MESHD_OPTS="--node NAME" in \(UnitsTarget.defaultEnvironmentFile) (MESHD_ENV_FILE overrides the path), \
            else the node tls.cert's certificate names. The config: --config, else MESHD_CONFIG, else \
            \(UnitsTarget.defaultConfig).
            With --generator (systemd.generator(7): one or three directories), writes the units, with \
            sockets.target.wants/ and meshd.service.wants/ links to them, into the first directory; with no node named anywhere it writes nothing \
            and exits 0, and on a bad mesh.json it writes nothing and prints meshd's own error.
            Exit status: 0 ok, 2 a configuration or usage error, 1 the units could not be written.
            """
    )

    @OptionGroup var options: ControlOptions

    @Flag(name: .long, help: "Run as a systemd generator: write the units into the first DIR instead of printing them.")
    var generator = false

    @Argument(help: ArgumentHelp("With --generator: the generator's normal, early and late directories (or one).", valueName: "dir"))
    var directories: [String] = []

    func validate() throws {
        if self.options.control != nil {
            throw ValidationError("units reads mesh.json and asks no agent: pass --config PATH, not --control")
        }
        if self.generator, ![1, 3].contains(self.directories.count) {
            throw ValidationError("--generator takes one or three directories (normal, early, late), got \(self.directories.count)")
        }
        if !self.generator, !self.directories.isEmpty {
            throw ValidationError("directories are only for --generator: \(self.directories.joined(separator: " "))")
        }
    }

    func run() throws {
        // Generators log to the kernel log (units/meshd-generator points stderr there), named as themselves.
        let name = self.generator ? "meshd-generator" : "meshctl"
        do {
            guard let units = try self.render(name: name) else { return }
            for note in units.notes { Self.printLine("\(name): note: \(note)") }
            if self.generator {
                try units.write(to: self.directories[0])
            } else {
                FileHandle.standardOutput.write(Data(units.text.utf8))
            }
        } catch let failure as MeshctlFailure {
            Self.printLine("\(name): \(failure.message)")
            throw ExitCode(failure.code)
        }
    }

    /// The node's units; nil when a generator has no node to write for (said on stderr).
    private func render(name: String) throws -> NodeUnits? {
        let target = try UnitsTarget.resolve(
            node: self.options.node,
            config: self.options.config,
            environment: ProcessInfo.processInfo.environment
        )
        let config: MeshConfiguration
        do {
            config = try MeshConfiguration.load(path: target.configPath)
        } catch {
            throw MeshctlFailure(code: 2, message: "\(error)")
        }
        let node: String
        do {
            node = try LocalNodeName.resolve(config: config, requested: target.node)
        } catch  where error.kind == .unnamed {
            let unnamed =
                "no node name (looked at \(target.searched)), and tls.cert in \(config.file) contains {node}, so no socket units — "
                + "name this node with MESHD_NODE=NAME in \(target.environmentFile), then 'systemctl daemon-reload'"
            // A package installed before the operator names the node must not fail the boot.
            guard self.generator else { throw MeshctlFailure(code: 2, message: unnamed) }
            Self.printLine("\(name): \(unnamed)")
            return nil
        } catch {
            throw MeshctlFailure(code: 2, message: "\(error)")
        }
        do {
            return try NodeUnits(config: config, node: node)
        } catch {
            throw MeshctlFailure(code: 2, message: "\(error)")
        }
    }

    private static func printLine(_ line: String) {
        FileHandle.standardError.write(Data((line + "\n").utf8))
    }
}
