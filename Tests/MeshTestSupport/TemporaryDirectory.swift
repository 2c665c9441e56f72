import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// A fresh directory under the system temp directory; the caller removes it.
public enum TemporaryDirectory {
    public static func make(prefix: String = "tunnelmesh-test") throws -> String {
        // Normalised (no "//"), so paths the tests compare against match what meshctl prints.
        let base = URL(fileURLWithPath: NSTemporaryDirectory()).standardizedFileURL.path
        var template = Array((base + "/\(prefix)-XXXXXX").utf8CString)
        guard let made = mkdtemp(&template) else { throw POSIXError(.init(rawValue: errno) ?? .EIO) }
        return String(cString: made)
    }
}
