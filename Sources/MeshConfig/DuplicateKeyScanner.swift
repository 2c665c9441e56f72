import Foundation

/// Finds a key repeated within one JSON object. JSONSerialization keeps only the last value of a
/// repeated key without a word, which would hide exactly the typos the loader must report.
enum DuplicateKeyScanner {
    private enum Frame {
        case object(path: JSONPath, keys: Set<String>, lastKey: String?, expectingKey: Bool)
        case array(path: JSONPath, index: Int)
    }

    /// The path of the first repeated key, or nil. `data` must already be known to be valid JSON.
    static func firstDuplicate(in data: Data) -> JSONPath? {
        let bytes = [UInt8](data)
        var stack: [Frame] = []
        var position = bytes.starts(with: [0xEF, 0xBB, 0xBF]) ? 3 : 0

        // The path of the value that starts at the current position.
        func valuePath() -> JSONPath {
            switch stack.last {
            case .object(let path, _, let lastKey, _)?: path.key(lastKey ?? "")
            case .array(let path, let index)?: path.index(index)
            case nil: .root
            }
        }

        while position < bytes.count {
            let byte = bytes[position]
            switch byte {
            case UInt8(ascii: "{"):
                stack.append(.object(path: valuePath(), keys: [], lastKey: nil, expectingKey: true))
            case UInt8(ascii: "["):
                stack.append(.array(path: valuePath(), index: 0))
            case UInt8(ascii: "}"), UInt8(ascii: "]"):
                _ = stack.popLast()
            case UInt8(ascii: ","):
                switch stack.last {
                case .object(let path, let keys, let lastKey, _)?:
                    stack[stack.count - 1] = .object(path: path, keys: keys, lastKey: lastKey, expectingKey: true)
                case .array(let path, let index)?:
                    stack[stack.count - 1] = .array(path: path, index: index + 1)
                case nil: break
                }
            case UInt8(ascii: "\""):
                let start = position
                position += 1
                while position < bytes.count && bytes[position] != UInt8(ascii: "\"") {
                    position += bytes[position] == UInt8(ascii: "\\") ? 2 : 1
                }
                if case .object(let path, var keys, _, true)? = stack.last {
                    let key = decodeString(bytes[start...min(position, bytes.count - 1)])
                    if keys.contains(key) { return path.key(key) }
                    keys.insert(key)
                    stack[stack.count - 1] = .object(path: path, keys: keys, lastKey: key, expectingKey: false)
                }
            default:
                break  // whitespace, ':', numbers and literals carry no structure we need
            }
            position += 1
        }
        return nil
    }

    /// The text of a JSON string literal (quotes included in `literal`), escapes decoded.
    private static func decodeString(_ literal: ArraySlice<UInt8>) -> String {
        if !literal.contains(UInt8(ascii: "\\")) {
            return String(decoding: literal.dropFirst().dropLast(), as: UTF8.self)
        }
        let decoded = try? JSONSerialization.jsonObject(with: Data(literal), options: [.fragmentsAllowed])
        return decoded as? String ?? String(decoding: literal, as: UTF8.self)
    }
}
