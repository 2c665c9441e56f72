/// Unit names for meshd's socket units: `meshd.socket` for the tunnel listener, `meshd-<name>.socket`
/// for the others, with `<name>` escaped as `systemd-escape` escapes a string, except that `-`
/// stays (it is valid in a unit name, and `meshd-pg-rw.socket` reads better than `meshd-pg\x2drw`).
/// So `etcd@db1` becomes `meshd-etcd\x40db1.socket`, never an instance of a template `meshd-etcd@`.
enum SystemdUnitName {
    /// systemd's UNIT_NAME_MAX, less its terminating NUL.
    static let maxLength = 255

    static func socket(for listener: String) -> String {
        listener == "mesh" ? "meshd.socket" : "meshd-\(self.escape(listener)).socket"
    }

    /// `systemd-escape STRING` but for `-`: ASCII letters, digits, `:`, `_` and `.` (not leading)
    /// stay, every other byte becomes `\xNN`. `/`, which systemd-escape turns into `-`, is escaped
    /// too, so that no two names share an escape.
    static func escape(_ text: String) -> String {
        var out = ""
        for (index, byte) in text.utf8.enumerated() {
            let plain: Bool
            switch byte {
            case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "0")...UInt8(ascii: "9"):
                plain = true
            case UInt8(ascii: ":"), UInt8(ascii: "_"), UInt8(ascii: "-"):
                plain = true
            case UInt8(ascii: "."):
                plain = index > 0
            default:
                plain = false
            }
            if plain {
                out.unicodeScalars.append(Unicode.Scalar(byte))
            } else {
                out += "\\x" + (byte < 16 ? "0" : "") + String(byte, radix: 16)
            }
        }
        return out
    }
}
