import Foundation

/// The kinds of value JSONSerialization produces, named the way error messages name them.
enum JSONKind: String {
    case object, array, string, number, boolean, null

    init(of value: Any) {
        switch value {
        case is [String: Any]: self = .object
        case is [Any]: self = .array
        case is String: self = .string
        case is NSNull: self = .null
        case let number as NSNumber:
            // JSON booleans arrive as NSNumber too; only their objCType ("c") tells them apart.
            let type = String(cString: number.objCType)
            self = (type == "c" || type == "B") ? .boolean : .number
        default: self = .null
        }
    }
}
