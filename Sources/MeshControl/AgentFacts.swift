import Foundation
import MeshConfig
import MeshControlModel

/// What the agent knows about itself that peers do not change: mesh, version, start time, the loaded
/// config and its digest, and this node's certificate expiry. Replaced as a whole on reload.
public struct AgentFacts: Sendable {
    public var mesh: String
    public var version: String
    public var startedAt: Date
    public var configFile: String
    public var configSHA256: String
    public var lastReload: ReloadOutcome
    public var certificateNotAfter: Date?
    public var services: [ServiceInfo]

    public init(
        mesh: String,
        version: String,
        startedAt: Date,
        configFile: String,
        configSHA256: String,
        lastReload: ReloadOutcome,
        certificateNotAfter: Date?,
        services: [ServiceInfo]
    ) {
        self.mesh = mesh
        self.version = version
        self.startedAt = startedAt
        self.configFile = configFile
        self.configSHA256 = configSHA256
        self.lastReload = lastReload
        self.certificateNotAfter = certificateNotAfter
        self.services = services
    }

    /// The facts of a node that has just loaded `config` successfully at `startedAt`; the config file
    /// is reported by its absolute path, whatever relative path meshd was given.
    public init(
        config: MeshConfiguration,
        node: String,
        version: String,
        startedAt: Date,
        configSHA256: String,
        certificateNotAfter: Date?
    ) {
        self.init(
            mesh: config.mesh,
            version: version,
            startedAt: startedAt,
            configFile: config.directory + "/" + (config.file as NSString).lastPathComponent,
            configSHA256: configSHA256,
            lastReload: ReloadOutcome(ok: true, at: startedAt),
            certificateNotAfter: certificateNotAfter,
            services: ServiceInfo.entries(config: config, node: node)
        )
    }
}
