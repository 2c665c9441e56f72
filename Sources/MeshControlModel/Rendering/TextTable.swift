/// Aligned columns for human output: each column as wide as its widest cell, two spaces apart, no
/// trailing spaces. Colour is applied after padding so escape codes never shift a column.
public struct TextTable: Sendable {
    /// One cell's text and the colour it is shown in.
    public struct Cell: Sendable, ExpressibleByStringLiteral {
        public var text: String
        public var paint: TextStyle.Paint?

        public init(_ text: String, _ paint: TextStyle.Paint? = nil) {
            self.text = text
            self.paint = paint
        }

        public init(stringLiteral value: String) {
            self.init(value)
        }
    }

    public var headers: [String]
    public var rows: [[Cell]] = []

    public init(headers: [String]) {
        self.headers = headers
    }

    public mutating func append(_ row: [Cell]) {
        precondition(row.count == self.headers.count, "a row needs one cell per column")
        self.rows.append(row)
    }

    public func render(_ style: TextStyle) -> String {
        var widths = self.headers.map(\.count)
        for row in self.rows {
            for (index, cell) in row.enumerated() { widths[index] = max(widths[index], cell.text.count) }
        }
        func line(_ cells: [Cell]) -> String {
            var pieces: [String] = []
            for (index, cell) in cells.enumerated() {
                let last = index == cells.count - 1
                let padding = last ? "" : String(repeating: " ", count: widths[index] - cell.text.count)
                pieces.append(style.paint(cell.text, cell.paint) + padding)
            }
            var text = pieces.joined(separator: "  ")
            while text.last == " " { text.removeLast() }
            return text
        }
        let header = line(self.headers.map { Cell($0, .bold) })
        return ([header] + self.rows.map(line)).joined(separator: "\n") + "\n"
    }
}
