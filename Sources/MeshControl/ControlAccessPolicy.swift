#if canImport(Glibc)
import Glibc
#endif

/// Who may use the control socket: root, the agent's own user, or a member of the socket file's
/// group (by the client's current group or the groups its user belongs to). Everyone else gets 403.
public struct ControlAccessPolicy: Sendable {
    /// Why a client was let in or turned away, for the log line.
    public enum Decision: Sendable, Equatable {
        case allowed(String)
        case denied(String)
    }

    public let agentUID: UInt32
    public let socketPath: String

    public init(socketPath: String, agentUID: UInt32 = getuid()) {
        self.socketPath = socketPath
        self.agentUID = agentUID
    }

    public func decide(_ peer: PeerCredentials) -> Decision {
        if peer.uid == 0 { return .allowed("root") }
        if peer.uid == self.agentUID { return .allowed("the agent's own user") }
        var info = stat()
        guard stat(self.socketPath, &info) == 0 else {
            return .denied("cannot read the group of \(self.socketPath) to check membership")
        }
        let group = info.st_gid
        if peer.gid == group { return .allowed("group \(group)") }
        if Self.groups(ofUser: peer.uid).contains(group) { return .allowed("member of group \(group)") }
        return .denied(
            "uid \(peer.uid) is not root, not the agent's user (uid \(self.agentUID)) and not in group \(group) of \(self.socketPath)"
        )
    }

    /// Primary and supplementary groups of `uid` from the user database; empty for an unknown uid.
    static func groups(ofUser uid: UInt32) -> [UInt32] {
        var entry = passwd()
        var found: UnsafeMutablePointer<passwd>?
        var buffer = [CChar](repeating: 0, count: 16 * 1024)
        let status = getpwuid_r(uid, &entry, &buffer, buffer.count, &found)
        guard status == 0, let user = found?.pointee, let name = user.pw_name else { return [] }
        var count: Int32 = 64
        for _ in 0..<4 {  // grows the list when the user is in more groups than it holds
            var groups = [gid_t](repeating: 0, count: Int(count))
            var capacity = count
            if getgrouplist(name, user.pw_gid, &groups, &capacity) >= 0 {
                return Array(groups.prefix(Int(capacity)))
            }
            count = max(capacity, count * 2)
        }
        return [user.pw_gid]
    }
}
