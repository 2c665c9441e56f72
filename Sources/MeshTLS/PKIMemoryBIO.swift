import COpenSSL
import Foundation

/// An owned memory BIO: how PEM text crosses between Swift `Data` and OpenSSL's PEM readers and writers.
final class PKIMemoryBIO {
    let pointer: OpaquePointer

    /// An empty BIO for OpenSSL to write into.
    init() throws {
        guard let bio = BIO_new(BIO_s_mem()) else { throw PKIError.openSSL("allocating a memory BIO") }
        pointer = bio
    }

    /// A BIO holding a copy of `data` for OpenSSL to read.
    convenience init(_ data: Data) throws {
        try self.init()
        let written = data.withUnsafeBytes { BIO_write(pointer, $0.baseAddress, Int32($0.count)) }
        guard written == data.count || data.isEmpty else { throw PKIError.openSSL("filling a memory BIO") }
    }

    deinit { BIO_free(pointer) }

    /// Everything written so far.
    var data: Data {
        var start: UnsafeMutablePointer<CChar>?
        let length = tm_BIO_get_mem_data(pointer, &start)
        guard let start, length > 0 else { return Data() }
        return Data(bytes: start, count: length)
    }

    var string: String { String(decoding: data, as: UTF8.self) }
}
