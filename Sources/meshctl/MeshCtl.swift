import ArgumentParser
import Foundation

/// `meshctl`, the operator's command line: the root command, which maps every failure to README's
/// exit codes (0 ok, 1 degraded, 2 usage or config error, 3 agent unreachable).
@main
struct MeshCtl: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "meshctl",
        abstract: "Inspect and manage a tunnelmesh node and its certificates.",
        discussion: "Exit status: 0 ok, 1 degraded, 2 usage or configuration error, 3 agent unreachable.",
        subcommands: [
            StatusCommand.self, PeersCommand.self, ServicesCommand.self, BackendsCommand.self, PingCommand.self,
            ReloadCommand.self, CheckCommand.self, UnitsCommand.self, PKICommand.self,
        ]
    )

    /// Accepted before the command name too (`meshctl --control PATH peers`); the commands read them.
    @OptionGroup var control: ControlOptions

    /// Replaces ArgumentParser's own entry point, whose usage errors exit 64 and whose other errors exit 1.
    static func main() async {
        do {
            var command = try parseAsRoot()
            if var asyncCommand = command as? any AsyncParsableCommand {
                try await asyncCommand.run()
            } else {
                try command.run()
            }
        } catch {
            exit(reporting: error)
        }
    }

    static func exit(reporting error: any Error) -> Never {
        // A command that already printed its report (e.g. a degraded status) throws a bare ExitCode.
        if let code = error as? ExitCode {
            Foundation.exit(code.rawValue)
        }
        let code = exitCode(for: error)
        if code == .success {  // --help and other clean exits
            print(fullMessage(for: error))
            Foundation.exit(0)
        }
        if code == .validationFailure {  // ArgumentParser's usage errors, with the usage line
            printError(fullMessage(for: error))
        } else {
            printError("meshctl: \(error)")
        }
        Foundation.exit(2)
    }

    static func printError(_ message: String) {
        FileHandle.standardError.write(Data((message + "\n").utf8))
    }
}
