import Foundation
import MeshConfig
import MeshControlModel

/// Fixed inputs for the golden-output tests: one clock, three peers in three states, one status.
public enum ControlFixtures {
    /// 2026-02-25 06:13:20 UTC.
    public static let now = Date(timeIntervalSince1970: 1_772_000_000)

    public static let peers: [PeerInfo] = [
        PeerInfo(
            name: "app9",
            address: "127.0.1.9:7443",
            dialer: true,
            state: "handshaking",
            since: now.addingTimeInterval(-7_200),
            lastError: "TLS handshake with app9 failed: certificate verify failed: certificate has expired",
            reconnects: 14
        ),
        PeerInfo(
            name: "db1",
            address: "127.0.1.1:7443",
            dialer: true,
            state: "up",
            since: now.addingTimeInterval(-180),
            lastError: "connection reset by peer",
            rttSeconds: 0.000_42,
            streamsActive: 2,
            streamsTotal: 310,
            bytesSent: 1_288_490_189,
            bytesReceived: 36_700_160,
            reconnects: 1,
            certificateNotAfter: now.addingTimeInterval(89 * 86_400 + 3_600),
            authenticatedAt: now.addingTimeInterval(-65),
            credentialsNotAfter: now.addingTimeInterval(30 * 86_400 + 60),
            reauthenticateAt: now.addingTimeInterval(29 * 86_400 + 60),
            drainingTunnels: 1,
            reauthentications: 2
        ),
        PeerInfo(
            name: "db2",
            address: "127.0.1.2:7443",
            dialer: false,
            state: "down",
            since: now.addingTimeInterval(-42),
            lastError: "connection refused",
            streamsTotal: 12,
            bytesSent: 5_120,
            bytesReceived: 1_536,
            reconnects: 3,
            certificateNotAfter: now.addingTimeInterval(5 * 86_400 + 60),
            credentialsNotAfter: now.addingTimeInterval(5 * 86_400 + 60),
            drainingTunnels: 0,
            reauthentications: 0
        ),
    ]

    public static let status = AgentStatus(
        node: "app1",
        mesh: "demo",
        version: "0.1.0",
        uptimeSeconds: 11_520,
        configFile: "/etc/meshd/mesh.json",
        configSHA256: "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
        lastReload: ReloadOutcome(ok: true, at: now.addingTimeInterval(-11_520)),
        peersUp: 1,
        peersTotal: 3,
        certificateNotAfter: now.addingTimeInterval(89 * 86_400 + 3_600),
        certificateDaysLeft: 89
    )

    /// The founding example mesh.json (`ConfigFixtures`) plus an echo service and two more forwards, parsed by MeshConfig.
    public static let meshJSON = """
        {
          "mesh": "demo",
          "tls": { "ca": "pki/ca.pem", "cert": "pki/{node}.pem", "key": "pki/{node}.key" },
          "nodes": {
            "db1":  { "address": "127.0.1.1:7443", "control": "run/db1.sock" },
            "db2":  { "address": "127.0.1.2:7443", "control": "run/db2.sock" },
            "app1": { "address": "127.0.1.3:7443", "control": "run/app1.sock" }
          },
          "services": {
            "postgres": { "on": { "db1": "127.0.0.1:55432", "db2": "127.0.0.1:55433" }, "allow": ["app1"] },
            "echo": { "on": { "db1": "127.0.0.1:17001", "db2": "unix:/run/echo.sock" }, "allow": ["*"] },
            "metrics": { "on": { "db1": "127.0.0.1:9100" } }
          },
          "forwards": [
            { "on": "app1", "listen": "127.0.0.1:15432", "to": "postgres@db1" },
            { "on": "app1", "listen": "127.0.0.1:15001", "to": "echo@db1" },
            { "on": "db2", "listen": "127.0.0.1:15433", "to": "postgres@db1" }
          ]
        }
        """

    public static func config() throws -> MeshConfiguration {
        try MeshConfiguration.parse(Data(meshJSON.utf8), file: "mesh.json", directory: "/etc/meshd")
    }
}
