import NIOCore

#if canImport(Glibc)
import Glibc
#endif

/// Who is on the other end of a control connection, as the kernel reports it with `SO_PEERCRED`
/// (the credentials the client had when it called connect).
public struct PeerCredentials: Sendable, Equatable, CustomStringConvertible {
    public var pid: Int32
    public var uid: UInt32
    public var gid: UInt32

    public init(pid: Int32, uid: UInt32, gid: UInt32) {
        self.pid = pid
        self.uid = uid
        self.gid = gid
    }

    public var description: String { "uid \(self.uid) gid \(self.gid) pid \(self.pid)" }

    /// Reads `SO_PEERCRED` from an accepted Unix socket channel; fails for any other channel type.
    static func of(_ channel: Channel) -> EventLoopFuture<PeerCredentials> {
        guard let provider = channel as? SocketOptionProvider else {
            return channel.eventLoop.makeFailedFuture(ChannelError.operationUnsupported)
        }
        let future: EventLoopFuture<KernelCredentials> = provider.unsafeGetSocketOption(
            level: .socket,
            name: NIOBSDSocket.Option(rawValue: SO_PEERCRED)
        )
        return future.map { PeerCredentials(pid: $0.pid, uid: $0.uid, gid: $0.gid) }
    }
}

/// Linux's `struct ucred` (pid_t, uid_t, gid_t), which Swift's Glibc module does not import because
/// glibc declares it only under `_GNU_SOURCE`. Same three 32-bit fields, same order, same size.
struct KernelCredentials {
    var pid: Int32
    var uid: UInt32
    var gid: UInt32
}
