import Foundation
import GitMLBasics
import GitMLStore

#if canImport(Glibc)
    import Glibc
#endif

/// A column's summary: enough to judge drift later without the raw data.
public struct ColumnProfile: Sendable {
    public var name: String
    /// "numeric" or "categorical".
    public var type: String
    /// Rows that had this column (present, missing or not).
    public var count: Int64 = 0
    /// Empty, NA, N/A, null, None, NaN.
    public var missing: Int64 = 0
    /// Numeric columns: values that did not parse as numbers, and infinities.
    public var invalid: Int64 = 0
    public var nonFinite: Int64 = 0
    public var min = Double.infinity
    public var max = -Double.infinity
    public var mean = 0.0
    var m2 = 0.0
    public var sketch = QuantileSketch()
    public var frequencies = FrequencyTable()
    /// Every value, when the profile keeps them (a drift between two data files is then exact): the finite numbers
    /// of a numeric column, the count of each value of a categorical one.
    public var values: [Double]?
    public var exactCounts: [String: Int64]?

    /// Population standard deviation (numpy's default, ddof = 0).
    public var std: Double {
        let n = count - missing - invalid - nonFinite
        return n > 0 ? (m2 / Double(n)).squareRoot() : 0
    }

    mutating func addNumber(_ x: Double) {
        let n = Double(count - missing - invalid - nonFinite)
        let delta = x - mean
        mean += delta / n
        m2 += delta * (x - mean)
        if x < min { min = x }
        if x > max { max = x }
        sketch.add(x)
        values?.append(x)
    }

    /// A fixed 20-bin histogram over [min, max], its counts estimated from the sketch.
    public var histogram: (edges: [Double], counts: [Int64]) {
        guard min.isFinite, max.isFinite, sketch.count > 0 else { return ([], []) }
        let bins = 20
        let width = (max - min) / Double(bins)
        let edges = (0...bins).map { $0 == bins ? max : min + Double($0) * width }
        var counts = [Int64](repeating: 0, count: bins)
        for (value, weight) in sketch.weighted {
            // A value outside [min, max] (a hand-edited profile) lands in the end bin, never an index out of range.
            let position = width > 0 ? (value - min) / width : 0
            let i = !(position > 0) ? 0 : position >= Double(bins - 1) ? bins - 1 : Int(position)
            counts[i] &+= weight
        }
        return (edges, counts)
    }

    var json: JSONValue {
        var object: [String: JSONValue] = [
            "name": .string(name), "type": .string(type), "count": .int(count), "missing": .int(missing),
        ]
        if type == "numeric" {
            let (edges, counts) = histogram
            object["invalid"] = .int(invalid)
            object["non_finite"] = .int(nonFinite)
            object["min"] = min.isFinite ? .double(min) : .null
            object["max"] = max.isFinite ? .double(max) : .null
            object["mean"] = .double(mean)
            object["std"] = .double(std)
            object["sketch"] = sketch.json
            object["histogram"] = .object([
                "edges": .array(edges.map(JSONValue.double)), "counts": .array(counts.map(JSONValue.int)),
                "estimated": .bool(true),
            ])
        } else {
            let (values, other) = frequencies.top(100)
            object["values"] = .array(values.map { .array([.string($0.0), .int($0.1)]) })
            object["other"] = .int(other)
            object["count_error"] = .int(frequencies.error)
            object["tracked"] = .int(Int64(frequencies.counts.count))
        }
        return .object(object)
    }
}

/// `.mlops/profiles/<sha256>.json`: the profile of one table, built in one streaming pass in bounded memory.
public struct Profile: Sendable {
    public static let schemaVersion: Int64 = 1
    public var name: String
    public var source: String
    public var rows: Int64
    public var target: String?
    public var columns: [ColumnProfile]

    /// Pretty JSON, keys sorted: the same table gives the same bytes.
    public var bytes: [UInt8] {
        Array(
            JSONWriter.pretty(
                .object([
                    "schema_version": .int(Self.schemaVersion), "name": .string(name), "source": .string(source),
                    "rows": .int(rows),
                    "target": target.map(JSONValue.string) ?? .null, "columns": .array(columns.map(\.json)),
                ])
            ).utf8)
    }
}

/// Builds profiles from CSV and JSON-lines files.
public enum ProfileBuilder {
    /// Empty, NA, N/A, null, None and NaN mean "no value" (packed into an integer for a quick lookup).
    static let missingMarkers: Set<UInt32> = Set(
        ["NA", "N/A", "na", "n/a", "null", "NULL", "None", "nan", "NaN", "NAN"].map { pack(Array($0.utf8)[...]) })

    static func pack(_ bytes: ArraySlice<UInt8>) -> UInt32 {
        bytes.reduce(UInt32(bytes.count)) { ($0 << 8) | UInt32($1) }
    }

    /// Reads `path` once. Column types are inferred from the first `sampleRows` rows (numeric when every present
    /// value there is a number) unless listed in `categorical`; later values that do not fit count as invalid.
    /// With `keepValues`, every value is kept as well (`ColumnProfile.values` and `exactCounts`), for an exact
    /// comparison of two data files; a stored profile never holds them.
    public static func build(
        path: String, source: String, name: String, categorical: Set<String> = [], target: String? = nil,
        sampleRows: Int = 1000, keepValues: Bool = false
    ) throws -> Profile {
        let reader = try TableReader(path: path, name: source)
        var sample: [TableRow] = []
        var row = TableRow()
        while sample.count < sampleRows, try reader.next(into: &row) { sample.append(row) }
        var columns: [ColumnProfile] = []
        func ensureColumns() {
            while columns.count < reader.columns.count {
                let index = columns.count
                let name = reader.columns[index]
                var present = false
                var numeric = !categorical.contains(name)
                for sampled in sample where numeric && index < sampled.count && !sampled.nulls[index] {
                    let range = sampled.range(index)
                    if isMissing(sampled.bytes, range) { continue }
                    present = true
                    if number(sampled.bytes, range) == nil { numeric = false }
                }
                var column = ColumnProfile(name: name, type: numeric && present ? "numeric" : "categorical")
                if keepValues {
                    if column.type == "numeric" { column.values = [] } else { column.exactCounts = [:] }
                }
                columns.append(column)
            }
        }
        ensureColumns()
        var rows: Int64 = 0
        func add(_ row: TableRow) throws {
            rows += 1
            if columns.count < reader.columns.count { ensureColumns() }
            for i in 0..<row.count {
                columns[i].count += 1
                let range = row.range(i)
                if row.nulls[i] || isMissing(row.bytes, range) {
                    columns[i].missing += 1
                } else if columns[i].type == "numeric" {
                    if let x = number(row.bytes, range) {
                        if x.isFinite { columns[i].addNumber(x) } else { columns[i].nonFinite += 1 }
                    } else {
                        columns[i].invalid += 1
                    }
                } else {
                    let text = row.bytes.withUnsafeBufferPointer {
                        String(validating: UnsafeBufferPointer(rebasing: $0[range]), as: UTF8.self)
                    }
                    guard let text else {
                        throw TableError(
                            file: source, row: reader.row, detail: "column \(columns[i].name) is not UTF-8 text")
                    }
                    columns[i].frequencies.add(text)
                    columns[i].exactCounts?[text, default: 0] += 1
                }
            }
        }
        for sampled in sample { try add(sampled) }
        sample = []
        while try reader.next(into: &row) { try add(row) }
        if let target, !columns.contains(where: { $0.name == target }) {
            throw TableError(file: source, row: 1, detail: "no column named \(target) (the target)")
        }
        return Profile(name: name, source: source, rows: rows, target: target, columns: columns)
    }

    /// Clinger's fast path: `[-]digits[.digits]` with at most 15 significant digits is an integer below 2^53 scaled
    /// by a power of ten at most 10^22, both exact in a Double, so one multiplication or division is correctly
    /// rounded: the same value strtod gives, without its cost. Anything else returns nil (strtod decides).
    static func fastDecimal(_ bytes: [UInt8], _ range: Range<Int>) -> Double? {
        var i = range.lowerBound
        var negative = false
        if bytes[i] == 0x2D || bytes[i] == 0x2B {
            negative = bytes[i] == 0x2D
            i += 1
        }
        var mantissa: UInt64 = 0
        var digits = 0
        var scale = 0
        var seenPoint = false
        var any = false
        while i < range.upperBound {
            let c = bytes[i]
            if c >= 0x30 && c <= 0x39 {
                any = true
                if mantissa != 0 || c != 0x30 { digits += 1 }
                guard digits <= 15 else { return nil }
                mantissa = mantissa * 10 + UInt64(c - 0x30)
                if seenPoint { scale += 1 }
            } else if c == 0x2E && !seenPoint {
                seenPoint = true
            } else {
                return nil
            }
            i += 1
        }
        guard any, scale <= 22 else { return nil }
        let value = scale == 0 ? Double(mantissa) : Double(mantissa) / powersOfTen[scale]
        return negative ? -value : value
    }

    static let powersOfTen: [Double] = (0...22).map { pow(10.0, Double($0)) }

    static func isMissing(_ bytes: [UInt8], _ range: Range<Int>) -> Bool {
        range.isEmpty || (range.count <= 4 && missingMarkers.contains(pack(bytes[range])))
    }

    /// The field as a number (decimal or exponent notation, inf, nan), parsed in place (the field is followed by
    /// a NUL); nil when it is not one entirely.
    static func number(_ bytes: [UInt8], _ range: Range<Int>) -> Double? {
        guard !range.isEmpty, range.count < 64, bytes[range.lowerBound] != 0x20 else { return nil }
        if let fast = fastDecimal(bytes, range) { return fast }
        return bytes.withUnsafeBufferPointer { buffer -> Double? in
            guard let base = buffer.baseAddress else { return nil }
            let start = UnsafeRawPointer(base + range.lowerBound).assumingMemoryBound(to: CChar.self)
            var end: UnsafeMutablePointer<CChar>?
            let value = strtod(start, &end)
            guard let end, UnsafePointer(end) == start + range.count else { return nil }
            // strtod also reads hexadecimal floats; a CSV number is decimal.
            for i in range where bytes[i] == 0x78 || bytes[i] == 0x58 { return nil }
            return value
        }
    }
}
