import Foundation
import MeshControl
import MeshControlModel

extension AgentFacts {
    /// What a test control server says about its agent: mesh "demo", version 0.1.0, started and
    /// last reloaded (successfully) at `startedAt`, unless a test says otherwise.
    public static func fixture(
        startedAt: Date = Date(),
        configFile: String = "/etc/meshd/mesh.json",
        configSHA256: String = "00",
        certificateNotAfter: Date? = nil,
        services: [ServiceInfo] = []
    ) -> AgentFacts {
        AgentFacts(
            mesh: "demo",
            version: "0.1.0",
            startedAt: startedAt,
            configFile: configFile,
            configSHA256: configSHA256,
            lastReload: ReloadOutcome(ok: true, at: startedAt),
            certificateNotAfter: certificateNotAfter,
            services: services
        )
    }
}
