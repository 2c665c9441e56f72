import MeshConfig
import NIOCore
import NIOPosix

/// Where a listener gets its socket: bound by us from mesh.json's address, or adopted from a
/// socket systemd already bound and passed by name (socket activation), so connections queue in
/// the kernel while the agent restarts.
public enum ListenSocket: Sendable, CustomStringConvertible {
    case bind(Endpoint)
    case inherited(fd: CInt, endpoint: Endpoint)

    /// The passed descriptor named `name`, else a socket of our own on `endpoint`.
    static func choose(name: String, endpoint: Endpoint, inherited: [String: CInt]) -> ListenSocket {
        if let fd = inherited[name] { return .inherited(fd: fd, endpoint: endpoint) }
        return .bind(endpoint)
    }

    /// Binds or adopts the socket with `bootstrap`.
    public func open(_ bootstrap: ServerBootstrap) -> EventLoopFuture<Channel> {
        switch self {
        case .inherited(let fd, _):
            return bootstrap.withBoundSocket(fd)
        case .bind(.tcp(let host, let port)):
            return bootstrap.bind(host: host, port: port)
        case .bind(.unix(let path)):
            return bootstrap.bind(unixDomainSocketPath: path, cleanupExistingSocketFile: true)
        }
    }

    public var description: String {
        switch self {
        case .bind(let endpoint): "\(endpoint)"
        case .inherited(let fd, let endpoint): "\(endpoint) (fd \(fd) from systemd)"
        }
    }
}
