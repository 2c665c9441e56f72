import COpenSSL

/// A certificate-authority operation that failed, worded for the operator who has to fix it.
public struct PKIError: Error, CustomStringConvertible, Sendable, Equatable {
    /// What was wrong, where, and what to do about it.
    public let description: String

    public init(_ description: String) {
        self.description = description
    }

    /// An OpenSSL call failed: names the step and appends OpenSSL's own reasons, draining its error queue.
    static func openSSL(_ step: String) -> PKIError {
        var reasons: [String] = []
        // The queue is bounded by OpenSSL (16 entries), the count guard only documents that.
        while reasons.count < 16 {
            let code = ERR_get_error()
            if code == 0 { break }
            var buffer = [CChar](repeating: 0, count: 256)
            ERR_error_string_n(code, &buffer, buffer.count)
            reasons.append(String(decoding: buffer.prefix(while: { $0 != 0 }).map { UInt8(bitPattern: $0) }, as: UTF8.self))
        }
        let detail = reasons.isEmpty ? "no reason given by OpenSSL" : reasons.joined(separator: "; ")
        return PKIError("\(step) failed in OpenSSL (\(detail))")
    }
}
