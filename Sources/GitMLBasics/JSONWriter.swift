/// Writes JSON deterministically: sorted keys, two-space indentation, shortest round-trip numbers.
/// Non-finite doubles are written as the strings "NaN", "Infinity" and "-Infinity" (JSON has no such numbers).
public enum JSONWriter {
    /// Pretty JSON ending in a newline, the form of every file git-ml writes.
    public static func pretty(_ value: JSONValue) -> String {
        var out = ""
        write(value, into: &out, indent: 0, pretty: true)
        out.append("\n")
        return out
    }

    /// One-line JSON, for tables and JSON lines.
    public static func compact(_ value: JSONValue) -> String {
        var out = ""
        write(value, into: &out, indent: 0, pretty: false)
        return out
    }

    private static func write(_ value: JSONValue, into out: inout String, indent: Int, pretty: Bool) {
        switch value {
        case .null: out.append("null")
        case .bool(let b): out.append(b ? "true" : "false")
        case .int(let i): out.append(String(i))
        case .double(let d): out.append(format(d))
        case .string(let s): appendQuoted(s, into: &out)
        case .array(let items):
            if items.isEmpty { out.append("[]"); return }
            out.append("[")
            for (n, item) in items.enumerated() {
                if n > 0 { out.append(",") }
                newline(into: &out, indent: indent + 1, pretty: pretty)
                write(item, into: &out, indent: indent + 1, pretty: pretty)
            }
            newline(into: &out, indent: indent, pretty: pretty)
            out.append("]")
        case .object(let members):
            if members.isEmpty { out.append("{}"); return }
            out.append("{")
            for (n, key) in members.keys.sorted().enumerated() {
                if n > 0 { out.append(",") }
                newline(into: &out, indent: indent + 1, pretty: pretty)
                appendQuoted(key, into: &out)
                out.append(pretty ? ": " : ":")
                write(members[key] ?? .null, into: &out, indent: indent + 1, pretty: pretty)
            }
            newline(into: &out, indent: indent, pretty: pretty)
            out.append("}")
        }
    }

    /// A double in the shortest text that reads back to the same value; non-finite values as quoted names.
    public static func format(_ d: Double) -> String {
        if d.isNaN { return "\"NaN\"" }
        if d.isInfinite { return d > 0 ? "\"Infinity\"" : "\"-Infinity\"" }
        return d.description
    }

    private static func newline(into out: inout String, indent: Int, pretty: Bool) {
        guard pretty else { return }
        out.append("\n")
        out.append(String(repeating: "  ", count: indent))
    }

    private static func appendQuoted(_ s: String, into out: inout String) {
        out.append("\"")
        for scalar in s.unicodeScalars {
            switch scalar {
            case "\"": out.append("\\\"")
            case "\\": out.append("\\\\")
            case "\n": out.append("\\n")
            case "\r": out.append("\\r")
            case "\t": out.append("\\t")
            case "\u{08}": out.append("\\b")
            case "\u{0C}": out.append("\\f")
            default:
                if scalar.value < 0x20 || scalar.value == 0x7F {
                    let hex = String(scalar.value, radix: 16)
                    out.append("\\u" + String(repeating: "0", count: 4 - hex.count) + hex)
                } else {
                    out.unicodeScalars.append(scalar)
                }
            }
        }
        out.append("\"")
    }
}
