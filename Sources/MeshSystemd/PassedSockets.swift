import CSystemd
import Logging
import NIOCore

#if canImport(Glibc)
import Glibc
#endif

/// The listening sockets systemd passed to this process by name (socket activation:
/// `LISTEN_FDS`, `LISTEN_PID`, `LISTEN_FDNAMES`, read through `sd_listen_fds_with_names`).
public struct PassedSockets: Sendable {
    /// One passed descriptor and the `FileDescriptorName=` systemd gave it.
    public struct Socket: Sendable, Equatable {
        public var fd: CInt
        public var name: String

        public init(fd: CInt, name: String) {
            self.fd = fd
            self.name = name
        }
    }

    /// A passed descriptor meshd cannot use as a listener, or a malformed environment.
    public struct Failure: Error, CustomStringConvertible {
        public var description: String
    }

    /// In the order systemd passed them (fd 3, 4, ...).
    public let sockets: [Socket]

    public init(sockets: [Socket]) {
        self.sockets = sockets
    }

    /// The sockets passed to this process; none when it was not socket-activated. The
    /// `LISTEN_*` variables are removed from the environment so no child inherits them.
    public static func fromEnvironment() throws -> PassedSockets {
        var names: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?
        let count = sd_listen_fds_with_names(1, &names)
        guard count >= 0 else {
            throw Failure(
                description:
                    "LISTEN_FDS/LISTEN_FDNAMES in the environment are malformed (\(String(cString: strerror(-count)))) — start meshd from meshd.socket, or unset them"
            )
        }
        defer {
            if let names {
                for index in 0..<Int(count) { free(names[index]) }
                free(names)
            }
        }
        let start = tm_sd_listen_fds_start()
        var sockets: [Socket] = []
        for index in 0..<Int(count) {
            let name = names?[index].map { String(cString: $0) } ?? "unknown"
            sockets.append(Socket(fd: start + CInt(index), name: name))
        }
        for socket in sockets where sd_is_socket(socket.fd, AF_UNSPEC, CInt(SOCK_STREAM.rawValue), 1) <= 0 {
            throw Failure(
                description:
                    "fd \(socket.fd) named \"\(socket.name)\" from systemd is not a listening stream socket — declare it with ListenStream= (and Accept=no) in meshd.socket"
            )
        }
        return PassedSockets(sockets: sockets)
    }

    /// The descriptors whose names are in `expected`, keyed by name. Every other descriptor (a
    /// name nothing in this node's config uses, or a second one with the same name) is closed
    /// with a warning, so a stale unit cannot leave a port accepting connections nobody serves.
    public func adopt(expected: Set<String>, logger: Logger) -> [String: CInt] {
        var adopted: [String: CInt] = [:]
        for socket in self.sockets {
            if expected.contains(socket.name), adopted[socket.name] == nil {
                adopted[socket.name] = socket.fd
                continue
            }
            let why =
                adopted[socket.name] != nil
                ? "a second socket with that name"
                : "no listener of this node has that name (expected: \(expected.sorted().joined(separator: ", ")))"
            logger.warning(
                "systemd passed fd \(socket.fd) named \"\(socket.name)\" on \(Self.localAddress(of: socket.fd).map { "\($0)" } ?? "an unknown address"): \(why); closing it — fix FileDescriptorName= in the meshd*.socket units"
            )
            close(socket.fd)
        }
        return adopted
    }

    /// The address a socket is bound to (getsockname), for checking it against mesh.json.
    public static func localAddress(of fd: CInt) -> SocketAddress? {
        var storage = sockaddr_storage()
        var length = socklen_t(MemoryLayout<sockaddr_storage>.size)
        let ok = withUnsafeMutablePointer(to: &storage) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
        }
        guard ok == 0 else { return nil }
        switch CInt(storage.ss_family) {
        case AF_INET:
            return withUnsafePointer(to: &storage) {
                $0.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { pointer in
                    var address = pointer.pointee.sin_addr
                    return Self.ipAddress(family: AF_INET, &address, port: UInt16(bigEndian: pointer.pointee.sin_port))
                }
            }
        case AF_INET6:
            return withUnsafePointer(to: &storage) {
                $0.withMemoryRebound(to: sockaddr_in6.self, capacity: 1) { pointer in
                    var address = pointer.pointee.sin6_addr
                    return Self.ipAddress(family: AF_INET6, &address, port: UInt16(bigEndian: pointer.pointee.sin6_port))
                }
            }
        case AF_UNIX:
            return withUnsafePointer(to: &storage) {
                $0.withMemoryRebound(to: sockaddr_un.self, capacity: 1) { pointer in
                    var path = pointer.pointee.sun_path
                    let text = withUnsafeBytes(of: &path) { bytes in
                        String(decoding: bytes.prefix { $0 != 0 }, as: UTF8.self)
                    }
                    return try? SocketAddress(unixDomainSocketPath: text)
                }
            }
        default:
            return nil
        }
    }

    private static func ipAddress<Address>(family: CInt, _ address: inout Address, port: UInt16) -> SocketAddress? {
        var text = [CChar](repeating: 0, count: Int(INET6_ADDRSTRLEN))
        guard inet_ntop(family, &address, &text, socklen_t(text.count)) != nil else { return nil }
        return try? SocketAddress(ipAddress: String(cString: text), port: Int(port))
    }
}
