import Foundation

/// Reads and writes the files of a PKI directory: keys with mode 0600, every file replaced atomically
/// so a running meshd never reads half a certificate or CRL.
enum PKIFile {
    static func exists(_ path: String) -> Bool {
        FileManager.default.fileExists(atPath: path)
    }

    /// Reads a whole file; `missingHint` says what to do when it does not exist.
    static func read(_ path: String, missingHint: String) throws -> Data {
        guard exists(path) else {
            throw PKIError("\(path): no such file — \(missingHint)")
        }
        do {
            return try Data(contentsOf: URL(fileURLWithPath: path))
        } catch {
            throw PKIError("\(path): cannot read (\(errnoText(error))) — check its permissions")
        }
    }

    /// Writes `data` to a temporary file beside `path` with exactly `mode`, then renames it into place.
    static func write(_ data: Data, to path: String, mode: mode_t) throws {
        let temporary = "\(path).tmp-\(getpid())"
        let fd = open(temporary, O_WRONLY | O_CREAT | O_EXCL, mode)
        guard fd >= 0 else {
            throw PKIError("\(path): cannot create (\(String(cString: strerror(errno)))) — check the directory's permissions")
        }
        var failure: String?
        if fchmod(fd, mode) != 0 { failure = String(cString: strerror(errno)) }
        data.withUnsafeBytes { raw in
            var offset = 0
            while failure == nil && offset < raw.count {
                let written = Foundation.write(fd, raw.baseAddress! + offset, raw.count - offset)
                if written < 0 {
                    if errno == EINTR { continue }
                    failure = String(cString: strerror(errno))
                } else {
                    offset += written
                }
            }
        }
        if failure == nil && fsync(fd) != 0 { failure = String(cString: strerror(errno)) }
        close(fd)
        if failure == nil && rename(temporary, path) != 0 { failure = String(cString: strerror(errno)) }
        if let failure {
            unlink(temporary)
            throw PKIError("\(path): cannot write (\(failure)) — check free space and the directory's permissions")
        }
    }

    /// Creates the directory (mode 0700, it will hold private keys) if it does not exist yet.
    static func createDirectory(_ path: String) throws {
        var isDirectory: ObjCBool = false
        if FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) {
            guard isDirectory.boolValue else {
                throw PKIError("\(path): exists but is not a directory — choose another --dir")
            }
            return
        }
        do {
            try FileManager.default.createDirectory(
                atPath: path,
                withIntermediateDirectories: true,
                attributes: [.posixPermissions: 0o700]
            )
        } catch {
            throw PKIError("\(path): cannot create directory (\(errnoText(error))) — check the parent's permissions")
        }
    }

    private static func errnoText(_ error: Error) -> String {
        if let posix = (error as NSError).userInfo[NSUnderlyingErrorKey] as? NSError, posix.domain == NSPOSIXErrorDomain {
            return String(cString: strerror(Int32(posix.code)))
        }
        return error.localizedDescription
    }
}
