/// Text bound for a terminal. Names, values and messages often come from repository files or data, so control
/// characters are shown as escapes (`\n`, `\u{1B}`): content can never move the cursor, clear the screen, change
/// colours or split one line of output into several.
public enum TerminalText {
    /// `text` with every control character (C0, DEL, C1) written as an escape.
    public static func escape(_ text: String) -> String {
        guard text.unicodeScalars.contains(where: isControl) else { return text }
        var out = ""
        for scalar in text.unicodeScalars {
            guard isControl(scalar) else {
                out.unicodeScalars.append(scalar)
                continue
            }
            switch scalar {
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            default: out += "\\u{" + String(scalar.value, radix: 16, uppercase: true) + "}"
            }
        }
        return out
    }

    static func isControl(_ scalar: Unicode.Scalar) -> Bool {
        scalar.value < 0x20 || (0x7F...0x9F).contains(scalar.value)
    }

    /// Rows as aligned columns (two spaces apart, the last column not padded), every cell escaped.
    public static func table(_ rows: [[String]]) -> String {
        let cells = rows.map { $0.map(escape) }
        guard let width = cells.map(\.count).max() else { return "" }
        var widths = [Int](repeating: 0, count: width)
        for row in cells { for (i, cell) in row.enumerated() { widths[i] = max(widths[i], cell.count) } }
        return cells.map { row in
            row.enumerated().map { i, cell in
                i == row.count - 1 ? cell : cell + String(repeating: " ", count: widths[i] - cell.count)
            }
            .joined(separator: "  ")
        }.joined(separator: "\n")
    }
}
