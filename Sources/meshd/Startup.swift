import Foundation
import MeshBalancer
import MeshConfig
import MeshTLS

/// Everything meshd checks before it opens a socket: the config, the node's name, and its TLS
/// files. Any problem here exits 2 with a message naming the file and what to do.
struct Startup {
    var config: MeshConfiguration
    var node: String
    var serverTLS: TLSContext
    var clientTLS: TLSContext
    /// Serials the CRL revokes (uppercase hex), to cut live tunnels on reload.
    var revokedSerials: Set<String>
    /// The front-door TLS of each balancer on this node that has a `tls` block.
    var balancerTLS: [String: TLSContext]

    static func load(configPath: String, node requested: String?) throws -> Startup {
        let config: MeshConfiguration
        do {
            config = try MeshConfiguration.load(path: configPath)
        } catch {
            throw StartupError(code: 2, message: "\(error)")
        }
        let node: String
        do {
            node = try LocalNodeName.resolve(config: config, requested: requested)
        } catch {
            throw StartupError(code: 2, message: "\(error)")
        }
        let files = config.tlsFiles(for: node)
        do {
            let server = try TLSContext(role: .server, files: files)
            let client = try TLSContext(role: .client, files: files)
            if let identity = server.localIdentity, identity != MeshIdentity(mesh: config.mesh, node: node) {
                throw StartupError(
                    code: 2,
                    message:
                        "\(files.cert): certificate is for \(identity.uri), but this node is \(MeshIdentity(mesh: config.mesh, node: node).uri) — issue one with 'meshctl pki issue \(node)'"
                )
            }
            var revoked: Set<String> = []
            if let crl = files.crl {
                do {
                    revoked = Set(try RevocationList(pemFile: crl).info.revoked.map(\.serial))
                } catch {
                    throw StartupError(code: 2, message: "\(crl): \(error)")
                }
            }
            var balancerTLS: [String: TLSContext] = [:]
            for balancer in config.balancers(on: node) {
                balancerTLS[balancer.name] = try FrontDoorTLS.context(for: balancer, in: config, node: node)
            }
            return Startup(
                config: config,
                node: node,
                serverTLS: server,
                clientTLS: client,
                revokedSerials: revoked,
                balancerTLS: balancerTLS
            )
        } catch let error as TLSSetupError {
            throw StartupError(code: 2, message: "\(error)")
        }
    }
}
