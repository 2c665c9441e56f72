import Logging
import MeshConfig
import MeshSystemd
import NIOCore

/// The sockets systemd passed meshd (socket activation), matched by name to this node's
/// listeners from mesh.json: `mesh`, `forward-<port>`, `<service>@<node>` (a `same_address`
/// service's member), `<balancer>-rw`, `<balancer>-ro`.
enum SystemdListeners {
    /// Every listener this node opens, by socket-activation name, with its mesh.json address.
    static func expected(config: MeshConfiguration, node: String) -> [String: Endpoint] {
        Dictionary(NodeListener.all(on: node, in: config).map { ($0.name, $0.endpoint) }, uniquingKeysWith: { first, _ in first })
    }

    /// The passed descriptors this node's listeners adopt, by name (empty outside socket
    /// activation). Descriptors no listener claims are closed with a warning; one bound to another
    /// address than mesh.json says is still used (systemd's unit wins) but logged, since peers and
    /// clients read mesh.json.
    static func adopt(config: MeshConfiguration, node: String, logger: Logger) throws -> [String: CInt] {
        let passed: PassedSockets
        do {
            passed = try PassedSockets.fromEnvironment()
        } catch {
            throw StartupError(code: 2, message: "\(error)")
        }
        guard !passed.sockets.isEmpty else { return [:] }
        let expected = self.expected(config: config, node: node)
        let adopted = passed.adopt(expected: Set(expected.keys), logger: logger)
        for (name, fd) in adopted.sorted(by: { $0.key < $1.key }) {
            guard let endpoint = expected[name] else { continue }
            let actual = PassedSockets.localAddress(of: fd)
            if let wanted = self.socketAddress(endpoint), let actual, actual != wanted {
                logger.warning(
                    "systemd socket \"\(name)\" (fd \(fd)) is bound to \(actual), but mesh.json (\(config.file)) says \(endpoint); serving the passed socket — regenerate the socket units ('systemctl daemon-reload'), then restart the socket and meshd (see 'meshctl units')"
                )
            }
            logger.info("listener \(name): adopting fd \(fd) from systemd (\(actual.map { "\($0)" } ?? "\(endpoint)"))")
        }
        return adopted
    }

    /// The address an endpoint names when it is an IP literal or a socket path; nil for a host
    /// name (resolving it here could disagree with the resolver systemd used).
    private static func socketAddress(_ endpoint: Endpoint) -> SocketAddress? {
        switch endpoint {
        case .tcp(let host, let port): try? SocketAddress(ipAddress: host, port: port)
        case .unix(let path): try? SocketAddress(unixDomainSocketPath: path)
        }
    }
}
