import Foundation

/// One result of `meshctl check`: what was checked or what is wrong, and where (file, JSON path, node).
///
/// Stable JSON (`--json`): fields are added, never renamed.
struct CheckFinding: Encodable, Equatable {
    enum Severity: String, Encodable {
        /// A file or node passed every check.
        case ok
        /// meshd would run, but not for long (a certificate or CRL about to expire, a key others can read).
        case warning
        /// meshd would refuse to start, or peers would refuse this node.
        case error
    }

    var severity: Severity
    /// The file the finding is about, absolute.
    var file: String
    /// For mesh.json problems: the dotted JSON path, e.g. `forwards[0].to`.
    var jsonPath: String?
    /// The node whose certificate files this is about; nil for mesh.json, the CA and the CRL.
    var node: String?
    /// What was found and, for problems, what to do.
    var message: String

    enum CodingKeys: String, CodingKey {
        case severity, file, node, message
        case jsonPath = "json_path"
    }

    func encode(to encoder: Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(self.severity, forKey: .severity)
        try container.encode(self.file, forKey: .file)
        try container.encode(self.jsonPath, forKey: .jsonPath)
        try container.encode(self.node, forKey: .node)
        try container.encode(self.message, forKey: .message)
    }

    /// `severity: file[: json.path]: [node: ]message`, one line, like a compiler diagnostic.
    var line: String {
        var text = "\(self.severity.rawValue): \(self.file)"
        if let jsonPath, !jsonPath.isEmpty { text += ": \(jsonPath)" }
        if let node { text += ": \(node)" }
        return text + ": " + self.message
    }
}

/// Everything `meshctl check` found, in the order it was checked.
///
/// Stable JSON (`--json`): fields are added, never renamed.
struct CheckReport: Encodable {
    var configFile: String
    /// The nodes whose certificate files were checked.
    var nodes: [String] = []
    var findings: [CheckFinding] = []

    var errors: Int { self.findings.filter { $0.severity == .error }.count }
    var warnings: Int { self.findings.filter { $0.severity == .warning }.count }

    /// 0 when nothing is an error (warnings included), else 2, as README's exit codes say.
    var exitCode: Int32 { self.errors == 0 ? 0 : 2 }

    enum CodingKeys: String, CodingKey {
        case configFile = "config_file"
        case nodes, findings, errors, warnings, ok
    }

    func encode(to encoder: Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(self.configFile, forKey: .configFile)
        try container.encode(self.errors == 0, forKey: .ok)
        try container.encode(self.errors, forKey: .errors)
        try container.encode(self.warnings, forKey: .warnings)
        try container.encode(self.nodes, forKey: .nodes)
        try container.encode(self.findings, forKey: .findings)
    }

    mutating func add(_ severity: CheckFinding.Severity, _ file: String, node: String? = nil, jsonPath: String? = nil, _ message: String) {
        self.findings.append(CheckFinding(severity: severity, file: file, jsonPath: jsonPath, node: node, message: message))
    }

    /// One line per finding, then a summary line.
    var text: String {
        var lines = self.findings.map(\.line)
        let checked =
            self.nodes.isEmpty
            ? "" : " (\(self.nodes.count) node\(self.nodes.count == 1 ? "" : "s") checked: \(self.nodes.joined(separator: ", ")))"
        lines.append(
            "meshctl check: \(self.errors) error\(self.errors == 1 ? "" : "s"), \(self.warnings) warning\(self.warnings == 1 ? "" : "s")\(checked)"
        )
        return lines.joined(separator: "\n") + "\n"
    }
}
