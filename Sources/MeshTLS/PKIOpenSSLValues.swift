import COpenSSL
import Foundation

/// Conversions between OpenSSL's ASN.1 value types (times, integers, names, strings) and Swift values.
enum PKIOpenSSLValues {
    /// A new ASN1_TIME the caller must free with ASN1_TIME_free.
    static func makeTime(_ date: Date) throws -> UnsafeMutablePointer<ASN1_TIME> {
        guard let time = ASN1_TIME_set(nil, time_t(date.timeIntervalSince1970.rounded(.down))) else {
            throw PKIError.openSSL("encoding the time \(date)")
        }
        return time
    }

    static func date(_ time: UnsafePointer<ASN1_TIME>?) -> Date? {
        guard let time else { return nil }
        var parts = tm()
        guard ASN1_TIME_to_tm(time, &parts) == 1 else { return nil }
        return Date(timeIntervalSince1970: TimeInterval(timegm(&parts)))
    }

    /// A new random positive 128-bit serial number the caller must free with ASN1_INTEGER_free.
    static func makeRandomSerial() throws -> UnsafeMutablePointer<ASN1_INTEGER> {
        var bytes = [UInt8](repeating: 0, count: 16)
        guard RAND_bytes(&bytes, Int32(bytes.count)) == 1 else { throw PKIError.openSSL("drawing a random serial number") }
        bytes[0] &= 0x7f  // positive
        bytes[0] |= 0x40  // no leading zero byte, so every serial is 16 bytes long
        guard let number = BN_bin2bn(bytes, Int32(bytes.count), nil) else { throw PKIError.openSSL("building a serial number") }
        defer { BN_free(number) }
        guard let serial = BN_to_ASN1_INTEGER(number, nil) else { throw PKIError.openSSL("encoding a serial number") }
        return serial
    }

    /// A serial number as uppercase hex without separators, the way `openssl x509 -serial` prints it.
    static func hex(_ integer: UnsafePointer<ASN1_INTEGER>?) -> String {
        guard let integer, let number = ASN1_INTEGER_to_BN(integer, nil) else { return "?" }
        defer { BN_free(number) }
        guard let text = BN_bn2hex(number) else { return "?" }
        defer { CRYPTO_free(text, #fileID, #line) }
        return String(cString: text)
    }

    /// A distinguished name in RFC 2253 form, e.g. `CN=db1`.
    static func string(_ name: OpaquePointer?) -> String {
        guard let name, let bio = try? PKIMemoryBIO() else { return "" }
        X509_NAME_print_ex(bio.pointer, name, 0, tm_XN_FLAG_RFC2253())
        return bio.string
    }

    static func commonName(_ name: OpaquePointer?) -> String? {
        guard let name else { return nil }
        let index = X509_NAME_get_index_by_NID(name, NID_commonName, -1)
        guard index >= 0, let entry = X509_NAME_get_entry(name, index) else { return nil }
        return string(X509_NAME_ENTRY_get_data(entry))
    }

    static func string(_ asn1: UnsafePointer<ASN1_STRING>?) -> String? {
        guard let asn1, let bytes = ASN1_STRING_get0_data(asn1) else { return nil }
        return String(decoding: UnsafeBufferPointer(start: bytes, count: Int(ASN1_STRING_length(asn1))), as: UTF8.self)
    }

    /// A digest as colon-separated uppercase hex pairs, the way `openssl x509 -fingerprint` prints it.
    static func colonHex(_ bytes: some Sequence<UInt8>) -> String {
        bytes.map { byte in
            let digits = String(byte, radix: 16, uppercase: true)
            return digits.count == 1 ? "0" + digits : digits
        }.joined(separator: ":")
    }
}
