import ArgumentParser
import Foundation
import MeshConfig
import MeshControlClient
import MeshControlModel

/// Where meshctl finds the agent: `--control PATH`, or `--config PATH --node NAME` (the node's
/// `control` in mesh.json), or else the default `/run/meshd/control.sock`. Accepted before or after
/// the command name.
struct ControlOptions: ParsableArguments {
    @Option(name: .long, help: ArgumentHelp("The agent's control socket.", valueName: "path"))
    var control: String?

    @Option(name: .long, help: ArgumentHelp("mesh.json, to find a node's control socket (with --node).", valueName: "path"))
    var config: String?

    @Option(name: .long, help: ArgumentHelp("The node whose control socket to use (with --config).", valueName: "name"))
    var node: String?

    func validate() throws {
        if self.control != nil, self.config != nil || self.node != nil {
            throw ValidationError("pass either --control PATH or --config PATH --node NAME, not both")
        }
    }

    /// The socket to talk to; a config problem exits 2 with the file and JSON path.
    func socketPath() throws -> String {
        if let control = self.control { return control }
        // Checked here, not in validate(): `meshctl check PATH --node NAME` takes --node without --config.
        if self.node != nil, self.config == nil {
            throw MeshctlFailure(code: 2, message: "--node NAME needs --config PATH to look up the node's control socket")
        }
        guard let path = self.config else { return NodeSettings.defaultControl }
        let config: MeshConfiguration
        do {
            config = try MeshConfiguration.load(path: path)
        } catch {
            throw MeshctlFailure(code: 2, message: "\(error)")
        }
        let declared = config.sortedNodeNames.joined(separator: ", ")
        guard let node = self.node else {
            throw MeshctlFailure(
                code: 2,
                message: "--config needs --node NAME to pick a node's control socket (declared in \(path): \(declared))"
            )
        }
        guard let settings = config.nodes[node] else {
            throw MeshctlFailure(code: 2, message: "\(path): nodes: no node \"\(node)\" (declared: \(declared))")
        }
        return settings.control
    }

    func client(timeout: Duration = .seconds(10)) throws -> ControlClient {
        ControlClient(socketPath: try self.socketPath(), timeout: timeout)
    }
}

/// A failure meshctl reports on stderr and exits with, following README's exit codes.
struct MeshctlFailure: Error, CustomStringConvertible {
    var code: Int32
    var message: String
    var description: String { self.message }

    /// 3 when the agent cannot be talked to, 2 when the request itself was wrong, 1 when the agent
    /// answered that something in the mesh is not working.
    init(_ error: ControlClientError) {
        self.message = "\(error)"
        switch error {
        case .unreachable, .refused, .timedOut: self.code = 3
        case .api(let status, _): self.code = (400..<500).contains(status) ? 2 : 1
        case .malformed: self.code = 1
        }
    }

    init(code: Int32, message: String) {
        self.code = code
        self.message = message
    }
}

/// Runs one read command: prints its failure as `meshctl: ...` and exits with the mapped code.
enum ControlCommand {
    static func run(_ body: () async throws -> Int32) async throws {
        let code: Int32
        do {
            code = try await body()
        } catch let error as ControlClientError {
            throw Self.report(MeshctlFailure(error))
        } catch let failure as MeshctlFailure {
            throw Self.report(failure)
        }
        if code != 0 { throw ExitCode(code) }
    }

    private static func report(_ failure: MeshctlFailure) -> ExitCode {
        FileHandle.standardError.write(Data("meshctl: \(failure.message)\n".utf8))
        return ExitCode(failure.code)
    }

    static var style: TextStyle {
        TextStyle.forStandardOutput(environment: ProcessInfo.processInfo.environment, isTerminal: isatty(STDOUT_FILENO) == 1)
    }

    static func printJSON<T: Encodable>(_ value: T) throws {
        FileHandle.standardOutput.write(Data(try ControlJSON.text(value).utf8))
    }

    static func printText(_ text: String) {
        FileHandle.standardOutput.write(Data(text.utf8))
    }
}
