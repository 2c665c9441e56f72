/// The mesh.json and node `meshctl units` renders for, found the way meshd.service finds them:
/// `--node`/`--config`, else `MESHD_NODE`/`MESHD_CONFIG` from the environment, else the unit's
/// EnvironmentFile (`/etc/meshd/meshd.env`, or `MESHD_ENV_FILE`) for `MESHD_NODE` or a
/// `--node` in `MESHD_OPTS`; the config defaults to the path meshd.service passes.
struct UnitsTarget {
    static let defaultConfig = "/etc/meshd/mesh.json"
    static let defaultEnvironmentFile = "/etc/meshd/meshd.env"

    var configPath: String
    /// The node as named by the operator; nil when nothing names it (then the certificate may).
    var node: String?
    /// The EnvironmentFile looked at (whether or not it exists).
    var environmentFile: String

    /// Everywhere a name was looked for, for the message when there is none.
    var searched: String {
        "--node, MESHD_NODE in the environment, MESHD_NODE or MESHD_OPTS=\"--node NAME\" in \(self.environmentFile)"
    }

    static func resolve(node: String?, config: String?, environment: [String: String]) throws -> UnitsTarget {
        func named(_ key: String) -> String? {
            guard let value = environment[key], !value.isEmpty else { return nil }
            return value
        }
        let configPath = config ?? named("MESHD_CONFIG") ?? Self.defaultConfig
        let envPath = named("MESHD_ENV_FILE") ?? Self.defaultEnvironmentFile
        if let node = node ?? named("MESHD_NODE") {
            return UnitsTarget(configPath: configPath, node: node, environmentFile: envPath)
        }
        guard let file = try EnvironmentFile.load(path: envPath) else {
            return UnitsTarget(configPath: configPath, node: nil, environmentFile: envPath)
        }
        let assigned = file.values["MESHD_NODE"].flatMap { $0.isEmpty ? nil : $0 }
        let optioned = file.values["MESHD_OPTS"].flatMap(EnvironmentFile.nodeOption(in:))
        if let assigned, let optioned, assigned != optioned {
            // meshd would take --node from MESHD_OPTS; a file saying two names is a mistake to fix, not to guess.
            throw MeshctlFailure(
                code: 2,
                message: "\(envPath): MESHD_NODE=\(assigned) but MESHD_OPTS says --node \(optioned); keep one (MESHD_NODE=NAME)"
            )
        }
        return UnitsTarget(configPath: configPath, node: optioned ?? assigned, environmentFile: envPath)
    }
}
