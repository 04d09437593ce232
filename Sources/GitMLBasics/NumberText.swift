import Foundation

/// Numbers as reports, cards and tables print them: whole numbers plainly, others with a few significant digits,
/// the same on every machine (no locale).
public enum NumberText {
    public static func format(_ value: Double, significant: Int = 6) -> String {
        guard value.isFinite else { return value.isNaN ? "NaN" : (value > 0 ? "Infinity" : "-Infinity") }
        if value == value.rounded(), abs(value) < 1e15 { return String(Int64(value)) }
        return String(format: "%.\(significant)g", value)
    }

    /// Every digit the value has: the shortest text that reads back as the same double (`0.912345678`), for
    /// metadata other programs read (Hugging Face's model-index), where 6 significant digits would lose precision.
    public static func exact(_ value: Double) -> String {
        guard value.isFinite else { return format(value) }
        if value == value.rounded(), abs(value) < 1e15 { return String(Int64(value)) }
        return "\(value)"
    }

    /// A change, signed: "+0.02", "-2", "0".
    public static func delta(_ value: Double, significant: Int = 6) -> String {
        value > 0 && value.isFinite
            ? "+" + format(value, significant: significant)
            : (value == 0 ? "0" : format(value, significant: significant))
    }

    /// A fraction as a percentage with one decimal: "15.5%".
    public static func percent(_ fraction: Double) -> String { String(format: "%.1f%%", fraction * 100) }
}
