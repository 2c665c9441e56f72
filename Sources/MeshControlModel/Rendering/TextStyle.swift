/// Whether human output is coloured: ANSI colours on a terminal, plain text otherwise (pipes,
/// files, `NO_COLOR`, golden tests).
public enum TextStyle: Sendable {
    case plain
    case ansi

    /// The colours the renderers use, each for one meaning.
    public enum Paint: String, Sendable {
        case good = "32"  // green: up, ok
        case warning = "33"  // yellow: on the way up, expiring soon
        case bad = "31"  // red: down, failed, expired
        case dim = "2"  // faint: absent values
        case bold = "1"
    }

    /// `ansi` only when stdout is a terminal and `NO_COLOR` is unset or empty (https://no-color.org).
    public static func forStandardOutput(environment: [String: String], isTerminal: Bool) -> TextStyle {
        if let noColor = environment["NO_COLOR"], !noColor.isEmpty { return .plain }
        return isTerminal ? .ansi : .plain
    }

    public func paint(_ text: String, _ paint: Paint?) -> String {
        guard self == .ansi, let paint, !text.isEmpty else { return text }
        return "\u{1B}[\(paint.rawValue)m\(text)\u{1B}[0m"
    }
}
