/// A JSON document held in memory. Objects keep no order: writing sorts keys, so equal values write equal bytes.
public enum JSONValue: Sendable, Equatable {
    case null
    case bool(Bool)
    case int(Int64)
    case double(Double)
    case string(String)
    case array([JSONValue])
    case object([String: JSONValue])

    /// The value as a floating-point number, when it is one (ints widen; "NaN"/"Infinity" strings are not numbers).
    public var number: Double? {
        switch self {
        case .int(let i): return Double(i)
        case .double(let d): return d
        default: return nil
        }
    }
    /// The value as a whole number within `range`; nil when it is fractional, not finite, out of range or not a
    /// number. The one way a number read from a file becomes an integer, so no conversion can trap.
    public func integer(in range: ClosedRange<Int64> = Int64.min...Int64.max) -> Int64? {
        switch self {
        case .int(let i): return range.contains(i) ? i : nil
        case .double(let d):
            // 2^63 is exactly representable; every double below it in magnitude converts without trapping.
            guard d.isFinite, d == d.rounded(), d >= -9.223_372_036_854_775_808e18, d < 9.223_372_036_854_775_808e18
            else { return nil }
            let i = Int64(d)
            return range.contains(i) ? i : nil
        default: return nil
        }
    }

    /// `integer(in:)` as an `Int`.
    public func int(in range: ClosedRange<Int>) -> Int? {
        integer(in: Int64(range.lowerBound)...Int64(range.upperBound)).map { Int($0) }
    }

    public var string: String? { if case .string(let s) = self { return s } else { return nil } }
    public var object: [String: JSONValue]? { if case .object(let o) = self { return o } else { return nil } }
    public var array: [JSONValue]? { if case .array(let a) = self { return a } else { return nil } }
    public var bool: Bool? { if case .bool(let b) = self { return b } else { return nil } }

    /// Member lookup on an object; nil for anything else.
    public subscript(key: String) -> JSONValue? { object?[key] }

    /// Follows a dotted path through nested objects (`environment.python.version`).
    public func lookup(_ dottedPath: String) -> JSONValue? {
        var current: JSONValue? = self
        for part in dottedPath.split(separator: ".", omittingEmptySubsequences: false) {
            current = current?[String(part)]
        }
        return current
    }

    /// Nested objects flattened to dotted keys (`{"a":{"b":1}}` -> `["a.b": 1]`); arrays and scalars are leaves.
    public func flattened(prefix: String = "") -> [String: JSONValue] {
        guard case .object(let members) = self else { return prefix.isEmpty ? [:] : [prefix: self] }
        var out: [String: JSONValue] = [:]
        for (key, value) in members {
            let path = prefix.isEmpty ? key : "\(prefix).\(key)"
            if case .object(let inner) = value, !inner.isEmpty {
                out.merge(value.flattened(prefix: path)) { _, new in new }
            } else {
                out[path] = value
            }
        }
        return out
    }

    /// Reads a command-line value the way a user means it: integers, decimals, true/false, else a string.
    public static func inferred(from text: String) -> JSONValue {
        if let i = Int64(text) { return .int(i) }
        if let d = Double(text), d.isFinite, text.contains(where: { $0.isNumber }) { return .double(d) }
        switch text {
        case "true": return .bool(true)
        case "false": return .bool(false)
        default: return .string(text)
        }
    }
}

extension JSONValue: CustomStringConvertible {
    /// Compact text for tables: strings bare, numbers in shortest form, containers as compact JSON.
    public var description: String {
        switch self {
        case .string(let s): return s
        default: return JSONWriter.compact(self)
        }
    }
}
