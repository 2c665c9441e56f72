import COpenSSL
import Foundation
import NIOCore

/// Incremental SHA-256 through OpenSSL's EVP API, so gigabytes can be hashed as they stream past.
final class SHA256Digest {
    private let context: OpaquePointer

    init() {
        self.context = EVP_MD_CTX_new()!
        precondition(EVP_DigestInit_ex(self.context, EVP_sha256(), nil) == 1, "EVP_DigestInit_ex(sha256) failed")
    }

    deinit { EVP_MD_CTX_free(self.context) }

    func update(_ bytes: UnsafeRawBufferPointer) {
        guard let base = bytes.baseAddress, bytes.count > 0 else { return }
        precondition(EVP_DigestUpdate(self.context, base, bytes.count) == 1, "EVP_DigestUpdate failed")
    }

    func update(_ data: Data) { data.withUnsafeBytes { self.update($0) } }
    func update(_ buffer: ByteBuffer) { buffer.withUnsafeReadableBytes { self.update($0) } }

    /// The hex digest; the object must not be updated afterwards.
    func finish() -> String {
        self.finishBytes().map { String(format: "%02x", $0) }.joined()
    }

    /// The 32 digest bytes; the object must not be updated afterwards.
    func finishBytes() -> [UInt8] {
        var out = [UInt8](repeating: 0, count: Int(EVP_MAX_MD_SIZE))
        var length: UInt32 = 0
        precondition(EVP_DigestFinal_ex(self.context, &out, &length) == 1, "EVP_DigestFinal_ex failed")
        return Array(out.prefix(Int(length)))
    }

    static func hex(_ data: Data) -> String {
        let digest = SHA256Digest()
        digest.update(data)
        return digest.finish()
    }

    static func hex(_ buffer: ByteBuffer) -> String {
        let digest = SHA256Digest()
        digest.update(buffer)
        return digest.finish()
    }
}
