import COpenSSL
import Foundation

/// A file's SHA-256, computed by OpenSSL: how `meshctl status` and reloads name the config file an
/// agent loaded, comparable with what `sha256sum` prints.
public enum FileDigest {
    /// Lowercase hex SHA-256 of the file's bytes.
    public static func sha256(ofFile path: String) throws -> String {
        let data = try Data(contentsOf: URL(fileURLWithPath: path))
        var digest = [UInt8](repeating: 0, count: Int(EVP_MAX_MD_SIZE))
        var length: UInt32 = 0
        let ok = data.withUnsafeBytes { bytes in
            EVP_Digest(bytes.baseAddress, bytes.count, &digest, &length, EVP_sha256(), nil)
        }
        guard ok == 1 else { throw Failure(path: path) }
        return digest.prefix(Int(length)).map { String(format: "%02x", $0) }.joined()
    }

    /// OpenSSL could not compute the digest of a file it had read.
    public struct Failure: Error, CustomStringConvertible {
        public var path: String
        public var description: String { "\(self.path): OpenSSL could not compute the file's SHA-256" }
    }
}
