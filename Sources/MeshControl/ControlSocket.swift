import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// Creates the listening Unix socket of the control API: parent directory made if missing, a stale
/// socket file from a dead agent replaced, a live one refused, mode 0660 set before `listen`, so no
/// client can connect while the file still has the umask's mode.
enum ControlSocket {
    /// sockaddr_un holds 108 bytes including the terminating NUL.
    static let maxPathLength = 107

    /// A listening socket's descriptor and the inode of its file, to remove only our own file at exit.
    struct Listening {
        var fd: Int32
        var inode: UInt64
    }

    static func listen(path: String, backlog: Int32 = 64) throws(ControlSocketError) -> Listening {
        guard path.utf8.count <= maxPathLength else {
            throw ControlSocketError(
                path: path,
                message: "the path is longer than \(maxPathLength) bytes; choose a shorter nodes.<name>.control"
            )
        }
        try self.makeParentDirectory(of: path)
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw ControlSocketError(path: path, message: "socket(): \(Self.lastError())") }
        do throws(ControlSocketError) {
            try self.bind(fd, path: path, replacingStale: true)
            guard chmod(path, 0o660) == 0 else {
                throw ControlSocketError(path: path, message: "cannot set mode 0660: \(Self.lastError())")
            }
            guard Glibc.listen(fd, backlog) == 0 else {
                throw ControlSocketError(path: path, message: "listen(): \(Self.lastError())")
            }
            var info = stat()
            guard stat(path, &info) == 0 else { throw ControlSocketError(path: path, message: "stat(): \(Self.lastError())") }
            return Listening(fd: fd, inode: UInt64(info.st_ino))
        } catch {
            close(fd)
            throw error
        }
    }

    /// Removes the socket file if it is still the one we created (another agent may have replaced it).
    static func remove(path: String, inode: UInt64) {
        var info = stat()
        guard lstat(path, &info) == 0, UInt64(info.st_ino) == inode, (info.st_mode & S_IFMT) == S_IFSOCK else { return }
        unlink(path)
    }

    private static func bind(_ fd: Int32, path: String, replacingStale: Bool) throws(ControlSocketError) {
        var address = self.address(path)
        let result = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                Glibc.bind(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size))
            }
        }
        if result == 0 { return }
        let code = errno
        guard code == EADDRINUSE, replacingStale else {
            throw ControlSocketError(path: path, message: "bind(): \(String(cString: strerror(code)))")
        }
        var info = stat()
        guard lstat(path, &info) == 0, (info.st_mode & S_IFMT) == S_IFSOCK else {
            throw ControlSocketError(
                path: path,
                message: "a file that is not a socket is in the way; move it or choose another nodes.<name>.control"
            )
        }
        if self.someoneListens(path) {
            throw ControlSocketError(
                path: path,
                message: "another process is serving this control socket — is another meshd running for this node?"
            )
        }
        unlink(path)
        try self.bind(fd, path: path, replacingStale: false)
    }

    /// Whether a connect to `path` succeeds, i.e. a live process owns the socket.
    private static func someoneListens(_ path: String) -> Bool {
        let probe = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard probe >= 0 else { return false }
        defer { close(probe) }
        var address = self.address(path)
        let result = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                connect(probe, $0, socklen_t(MemoryLayout<sockaddr_un>.size))
            }
        }
        return result == 0
    }

    private static func address(_ path: String) -> sockaddr_un {
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            raw.copyBytes(from: path.utf8.prefix(maxPathLength))
        }
        return address
    }

    private static func makeParentDirectory(of path: String) throws(ControlSocketError) {
        let parent = (path as NSString).deletingLastPathComponent
        guard !parent.isEmpty else { return }
        do {
            try FileManager.default.createDirectory(atPath: parent, withIntermediateDirectories: true)
        } catch {
            throw ControlSocketError(path: path, message: "cannot create the directory \(parent): \(error.localizedDescription)")
        }
    }

    private static func lastError() -> String {
        String(cString: strerror(errno))
    }
}

/// The control socket could not be created; names the path and what to do.
public struct ControlSocketError: Error, CustomStringConvertible {
    public var path: String
    public var message: String
    public var description: String { "control socket \(self.path): \(self.message)" }
}
