import Foundation
import Logging
import MeshBalancer
import MeshConfig
import MeshControl
import MeshControlModel
import MeshTLS
import MeshTunnel

/// Re-reads mesh.json, the node's certificate, key and CRL, and applies them to the running node
/// (SIGHUP and `meshctl reload`). A new config or certificate that fails to load is rejected as a
/// whole: the node keeps what it had, and the error is logged and kept for `meshctl status`.
actor Reloader {
    private let configPath: String
    private let node: String
    private let mesh: MeshNode
    private let balancers: BalancerHost
    private let api: ControlAPI
    private let logger: Logger

    init(configPath: String, node: String, mesh: MeshNode, balancers: BalancerHost, api: ControlAPI, logger: Logger) {
        self.balancers = balancers
        self.configPath = configPath
        self.node = node
        self.mesh = mesh
        self.api = api
        self.logger = logger
    }

    func reload() async -> ReloadOutcome {
        let at = Date()
        let outcome: ReloadOutcome
        do {
            let startup = try Startup.load(configPath: self.configPath, node: self.node)
            let summary = try await self.mesh.reload(
                config: startup.config,
                serverTLS: startup.serverTLS,
                clientTLS: startup.clientTLS,
                revokedSerials: startup.revokedSerials
            )
            await self.balancers.reload(tls: startup.balancerTLS)
            let digest = try FileDigest.sha256(ofFile: self.configPath)
            outcome = ReloadOutcome(ok: true, at: at, summary: "\(summary)")
            let facts = AgentFacts(
                config: startup.config,
                node: self.node,
                version: ControlService.version,
                startedAt: at,
                configSHA256: digest,
                certificateNotAfter: startup.serverTLS.certificateNotAfter
            )
            self.api.update { current in
                let startedAt = current.startedAt
                current = facts
                current.startedAt = startedAt
                current.lastReload = outcome
            }
        } catch {
            let message = (error as? StartupError)?.message ?? "\(error)"
            self.logger.error("reload rejected, keeping the running config: \(message)")
            outcome = ReloadOutcome(ok: false, at: at, error: message)
            self.api.update { $0.lastReload = outcome }
        }
        return outcome
    }
}
