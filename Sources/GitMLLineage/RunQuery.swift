import Foundation
import GitMLBasics

/// `--where` and `--sort` over run summaries, in MLflow's search syntax:
/// `metrics.acc > 0.9 and params.optimizer = 'adam'`, `--sort -metrics.acc`.
public struct RunQuery: Sendable {
    struct Condition: Sendable {
        var field: String
        var op: String
        var value: JSONValue
    }
    let conditions: [Condition]

    /// Parses a conjunction of comparisons joined by `and`.
    public init(where text: String?) throws {
        guard let text, !text.trimmingCharacters(in: .whitespaces).isEmpty else {
            conditions = []
            return
        }
        var parsed: [Condition] = []
        var tokens = try Self.tokenize(text)[...]
        while !tokens.isEmpty {
            guard tokens.count >= 3 else { throw Self.error(text, "expected FIELD OP VALUE") }
            let field = tokens.removeFirst()
            let op = tokens.removeFirst()
            let raw = tokens.removeFirst()
            guard ["=", "==", "!=", ">", ">=", "<", "<="].contains(op.text) else {
                throw Self.error(text, "unknown operator \(op.text)")
            }
            guard !field.quoted, field.text.contains(".") || Self.topFields.contains(field.text) else {
                throw Self.error(text, "unknown field \(field.text)")
            }
            parsed.append(
                Condition(
                    field: field.text, op: op.text == "==" ? "=" : op.text,
                    value: raw.quoted ? .string(raw.text) : JSONValue.inferred(from: raw.text)))
            if let next = tokens.first {
                guard next.text.lowercased() == "and", !next.quoted else {
                    throw Self.error(text, "expected 'and' before \(next.text)")
                }
                tokens.removeFirst()
                if tokens.isEmpty { throw Self.error(text, "nothing after 'and'") }
            }
        }
        conditions = parsed
    }

    static let topFields: Set<String> = ["id", "created", "kind", "status", "seed", "exit_status"]

    private static func error(_ text: String, _ detail: String) -> LineageError {
        .badArgument(
            "--where '\(text)': \(detail)", hint: "for example --where \"metrics.acc > 0.9 and params.lr = 0.01\"")
    }

    private struct Token { var text: String; var quoted: Bool }

    private static func tokenize(_ text: String) throws -> [Token] {
        var tokens: [Token] = []
        var i = text.startIndex
        while i < text.endIndex {
            let c = text[i]
            if c.isWhitespace { i = text.index(after: i); continue }
            if c == "'" || c == "\"" {
                guard let close = text[text.index(after: i)...].firstIndex(of: c) else {
                    throw error(text, "unterminated quote")
                }
                tokens.append(Token(text: String(text[text.index(after: i)..<close]), quoted: true))
                i = text.index(after: close)
            } else if "<>=!".contains(c) {
                var j = text.index(after: i)
                if j < text.endIndex, text[j] == "=" { j = text.index(after: j) }
                tokens.append(Token(text: String(text[i..<j]), quoted: false))
                i = j
            } else {
                var j = i
                while j < text.endIndex, !text[j].isWhitespace, !"<>=!'\"".contains(text[j]) {
                    j = text.index(after: j)
                }
                tokens.append(Token(text: String(text[i..<j]), quoted: false))
                i = j
            }
        }
        return tokens
    }

    /// A field of a summary: `metrics.<name>` and `params.<name>` take the rest as the (dotted) name.
    public static func value(of field: String, in summary: JSONValue) -> JSONValue? {
        for section in ["metrics.", "params."] where field.hasPrefix(section) {
            return summary[String(section.dropLast())]?[String(field.dropFirst(section.count))]
        }
        return summary.lookup(field)
    }

    /// True when every condition holds; a missing field makes its condition false.
    public func matches(_ summary: JSONValue) -> Bool {
        conditions.allSatisfy { condition in
            guard let actual = Self.value(of: condition.field, in: summary), actual != .null else { return false }
            let order = Self.compare(actual, condition.value)
            switch condition.op {
            case "=": return order == 0
            case "!=": return order != 0
            case ">": return order.map { $0 > 0 } ?? false
            case ">=": return order.map { $0 >= 0 } ?? false
            case "<": return order.map { $0 < 0 } ?? false
            case "<=": return order.map { $0 <= 0 } ?? false
            default: return false
            }
        }
    }

    /// Numbers compare as numbers, everything else as text; nil when they cannot be ordered.
    static func compare(_ a: JSONValue, _ b: JSONValue) -> Int? {
        if let x = a.number, let y = b.number { return x < y ? -1 : (x > y ? 1 : 0) }
        if a.number != nil || b.number != nil, a.string == nil || b.string == nil {
            let x = a.description, y = b.description
            return x == y ? 0 : nil
        }
        let x = a.description, y = b.description
        return x < y ? -1 : (x > y ? 1 : 0)
    }

    /// Sorts by `key` (`-` in front for descending); runs without the field go last. Default: newest first.
    public static func sort(_ runs: [RunSummary], by key: String?) -> [RunSummary] {
        guard let key, !key.isEmpty else {
            return runs.sorted { ($0.created, $0.id) > ($1.created, $1.id) }
        }
        let descending = key.hasPrefix("-")
        let field = descending ? String(key.dropFirst()) : (key.hasPrefix("+") ? String(key.dropFirst()) : key)
        return runs.sorted { lhs, rhs in
            let a = value(of: field, in: lhs.json).flatMap { $0 == .null ? nil : $0 }
            let b = value(of: field, in: rhs.json).flatMap { $0 == .null ? nil : $0 }
            switch (a, b) {
            case (nil, nil): return lhs.created > rhs.created
            case (nil, _): return false
            case (_, nil): return true
            case (let a?, let b?):
                let order = compare(a, b) ?? 0
                if order == 0 { return lhs.created > rhs.created }
                return descending ? order > 0 : order < 0
            }
        }
    }
}
