import Foundation
import MeshControlModel

/// How `meshctl reload --dry-run` and `meshctl check --against` print an agent's plan: the
/// changes grouped by kind, or the error a reload would be rejected with (exit 2).
enum DryRunReport {
    /// Prints `outcome` (as JSON with `json`); the exit status: 0 planned, 2 a reload would be rejected.
    /// `file`: the candidate mesh.json, when it is not the agent's own config file.
    static func print(_ outcome: ReloadOutcome, file: String?, json: Bool) throws -> Int32 {
        if json {
            try ControlCommand.printJSON(outcome)
        } else if outcome.ok {
            ControlCommand.printText(
                "dry run\(file.map { " of \($0)" } ?? ""), nothing applied:\n"
                    + ConfigChangesText.render(outcome.changes ?? [], style: ControlCommand.style)
            )
        } else {
            ControlCommand.printText("a reload would be rejected, the agent keeps its config: \(outcome.error ?? "unknown error")\n")
        }
        return outcome.ok ? 0 : 2
    }

    /// The dry-run form of the reload endpoint; `file` names a mesh.json sent in the body.
    static func path(file: String?) -> String {
        guard let file else { return "/v1/reload?dry_run=true" }
        var allowed = CharacterSet.urlQueryAllowed
        allowed.remove(charactersIn: "&=+?#")
        return "/v1/reload?dry_run=true&file=" + (file.addingPercentEncoding(withAllowedCharacters: allowed) ?? "mesh.json")
    }
}
