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
///
/// A dry run (`meshctl reload --dry-run`, `meshctl check --against`) takes the same steps up to
/// the plan — `Startup.load`, `MeshNode.plan`, `BalancerHost.listenerPlan`, the ones a reload runs —
/// and stops there: nothing is applied, logged as a failure or kept for `meshctl status`.
actor Reloader {
    private let configPath: String
    private let node: String
    private let mesh: MeshNode
    private let balancers: BalancerHost
    private let api: ControlAPI
    private let logger: Logger
    init(
        configPath: String,
        node: String,
        mesh: MeshNode,
        balancers: BalancerHost,
        api: ControlAPI,
        logger: Logger
    ) {
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
            let message = Self.message(error)
            self.logger.error("reload rejected, keeping the running config: \(message)")
            outcome = ReloadOutcome(ok: false, at: at, error: message)
            self.api.update { $0.lastReload = outcome }
        }
        return outcome
    }

    /// What a reload of the agent's config file, or of `request.document` put in its place, would
    /// change; refused with exactly the error the reload would give.
    func dryRun(_ request: DryRunRequest) -> ReloadOutcome {
        let at = Date()
        let name = request.file ?? self.configPath
        do {
            let startup: Startup
            if let document = request.document {
                startup = try Startup.load(document: document, file: name, directory: self.mesh.config.directory, node: self.node)
            } else {
                startup = try Startup.load(configPath: self.configPath, node: self.node)
            }
            let plan = try self.mesh.plan(
                config: startup.config,
                revokedSerials: startup.revokedSerials,
                trustChanged: startup.serverTLS.credentials != self.mesh.credentials
            )
            let changes = ConfigChange.planned(
                node: self.node,
                running: self.mesh.config,
                new: startup.config,
                tunnels: plan,
                balancerListeners: self.balancers.listenerPlan(config: startup.config)
            )
            self.logger.info("dry run of \(name): \(changes.count) changes, nothing applied")
            return ReloadOutcome(ok: true, at: at, dryRun: true, changes: changes)
        } catch {
            let message = Self.message(error)
            self.logger.info("dry run of \(name): a reload would be rejected: \(message)")
            return ReloadOutcome(ok: false, at: at, error: message, dryRun: true)
        }
    }

    private static func message(_ error: any Error) -> String {
        (error as? StartupError)?.message ?? "\(error)"
    }
}
