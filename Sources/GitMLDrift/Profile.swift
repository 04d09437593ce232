import CSystemShims
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
    /// Rows (every row of the table: one without this column counts it as missing).
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
        if x < min { min = x }
        if x > max { max = x }
        if values != nil {
            values?.append(x)  // the mean and variance come from the kept values at the end (`momentsFromValues`)
            return
        }
        let n = Double(count - missing - invalid - nonFinite)
        let delta = x - mean
        mean += delta / n
        m2 += delta * (x - mean)
        sketch.add(x)
    }

    /// Counts `n` occurrences of a categorical value: exactly, or into the bounded frequency table.
    mutating func countText(_ text: String, _ n: Int64, exactly: Bool) {
        if exactly {
            exactCounts?[text, default: 0] += n
        } else {
            frequencies.add(text, count: n)
        }
    }

    /// The mean and the sum of squared deviations, from the kept values (two passes: exact to rounding).
    mutating func momentsFromValues() {
        guard let values, !values.isEmpty else { return }
        mean = values.reduce(0, +) / Double(values.count)
        m2 = values.reduce(0) { $0 + ($1 - mean) * ($1 - mean) }
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
    public static let schemaVersion: Int64 = 2
    /// Counts past 2^53 are not exact in a double, and no table git-ml reads has that many rows.
    public static let maxRows: Int64 = 1 << 53
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
    /// Empty, NA, N/A, null, None and NaN mean "no value" (each packed into an integer for a quick comparison).
    static let missingMarkers: [UInt32] = ["NA", "N/A", "na", "n/a", "null", "NULL", "None", "nan", "NaN", "NAN"]
        .map { Array($0.utf8).withUnsafeBufferPointer { pack($0, 0..<$0.count) } }

    static func pack(_ b: UnsafeBufferPointer<UInt8>, _ range: Range<Int>) -> UInt32 {
        var packed = UInt32(range.count)
        for i in range { packed = (packed << 8) | UInt32(b[i]) }
        return packed
    }

    /// Files are read in chunks of this many bytes (each starting at a row), on every core, and the chunks'
    /// profiles merged in file order. The size is fixed, not derived from the core count, so the same file gives
    /// the same profile on every machine.
    public static let chunkSize = 8 << 20

    /// Reads `path` once. Column types are inferred from the first `sampleRows` rows (numeric when every present
    /// value there is a number) unless listed in `categorical`; a column first seen later (JSON lines) is
    /// categorical; later values that do not fit count as invalid. With `keepValues`, every value is kept instead
    /// of sketched (`ColumnProfile.values` and `exactCounts`), for an exact comparison of two data files; a stored
    /// profile never holds them. A file larger than two chunks is read in parallel chunks; when a chunk cannot be
    /// read on its own (a quoted field spans its end, a row is bad), the file is read again in one pass, which
    /// names the error and its row.
    public static func build(
        path: String, source: String, name: String, categorical: Set<String> = [], target: String? = nil,
        sampleRows: Int = 1000, keepValues: Bool = false, chunkSize: Int = ProfileBuilder.chunkSize
    ) throws -> Profile {
        try PerformanceTrace.measure("read \(source)") {
            try readTable(
                path: path, source: source, name: name, categorical: categorical, target: target,
                sampleRows: sampleRows, keepValues: keepValues, chunkSize: chunkSize)
        }
    }

    private static func readTable(
        path: String, source: String, name: String, categorical: Set<String>, target: String?, sampleRows: Int,
        keepValues: Bool, chunkSize: Int
    ) throws -> Profile {
        let format = TableReader.format(of: path)
        var info = stat()
        let size = stat(path, &info) == 0 ? Int(info.st_size) : 0
        if size > 2 * chunkSize, let boundaries = try? chunkBoundaries(path: path, size: size, chunkSize: chunkSize),
            let profile = try? chunked(
                path: path, source: source, name: name, format: format, boundaries: boundaries,
                categorical: categorical, target: target, sampleRows: sampleRows, keepValues: keepValues)
        {
            return profile
        }
        let reader = try TableReader(path: path, name: source, format: format)
        var pass = Pass(source: source, keepValues: keepValues)
        try pass.sample(reader, rows: sampleRows, categorical: categorical)
        try pass.run(reader)
        return try pass.profile(name: name, target: target)
    }

    /// Chunk starts: the first line break at or after each multiple of `chunkSize`, plus one; then the file's size.
    static func chunkBoundaries(path: String, size: Int, chunkSize: Int) throws -> [Int] {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw TableError(file: path, row: 0, detail: "cannot open") }
        defer { close(fd) }
        var boundaries = [0]
        var block = [UInt8](repeating: 0, count: 64 << 10)
        var target = chunkSize
        while target < size - chunkSize / 2 {
            var offset = target
            var found: Int?
            while found == nil && offset < size {
                let n = block.withUnsafeMutableBytes { pread(fd, $0.baseAddress, $0.count, off_t(offset)) }
                guard n > 0 else { break }
                if let i = block[0..<n].firstIndex(of: 0x0A) { found = offset + i + 1 } else { offset += n }
            }
            guard let start = found, start < size else { break }
            boundaries.append(start)
            target = Swift.max(target + chunkSize, start + 1)
        }
        boundaries.append(size)
        return boundaries
    }

    /// Profiles each chunk on its own (types from the first chunk's sample) and merges them in order.
    static func chunked(
        path: String, source: String, name: String, format: TableReader.Format, boundaries: [Int],
        categorical: Set<String>, target: String?, sampleRows: Int, keepValues: Bool
    ) throws -> Profile {
        let first = try TableReader(path: path, name: source, format: format, range: boundaries[0]..<boundaries[1])
        var firstPass = Pass(source: source, keepValues: keepValues)
        try firstPass.sample(first, rows: sampleRows, categorical: categorical)
        // The sample must lie in the first chunk, or the chunks could not type columns as one pass would.
        guard firstPass.sampled == sampleRows else { throw TableError(file: source, row: 0, detail: "few rows") }
        let types = firstPass.types
        let header = format == .csv ? first.columns : nil
        // Rows a chunk is expected to hold, from the sample's bytes per row, so kept values are stored without the
        // slack of arrays that grow by doubling.
        let bytesPerRow = Swift.max(1, firstPass.sampleBytes / Swift.max(1, firstPass.sampled))
        firstPass.expectedRows = (boundaries[1] - boundaries[0]) / bytesPerRow * 21 / 20
        let shared = Handoff((firstPass, first))
        var parts = try Parallel.map(count: boundaries.count - 1) { index -> Pass in
            if index == 0 {
                var (pass, reader) = shared.value
                try pass.run(reader)
                return pass
            }
            let reader = try TableReader(
                path: path, name: source, format: format, range: boundaries[index]..<boundaries[index + 1],
                header: header)
            var pass = Pass(source: source, keepValues: keepValues)
            pass.types = types
            pass.expectedRows = (boundaries[index + 1] - boundaries[index]) / bytesPerRow * 21 / 20
            try pass.run(reader)
            return pass
        }
        // Kept values are gathered a column at a time into one array sized once, each chunk's part released (and
        // the memory given back) as soon as it is copied: memory peaks at the values plus one column, not twice the
        // values. Then everything else is merged in file order.
        var gathered: [String: [Double]] = [:]
        if keepValues {
            var names: [String] = []
            for pass in parts { for column in pass.columns where column.values != nil { names.append(column.name) } }
            for name in Set(names).sorted() {
                var all: [Double] = []
                all.reserveCapacity(
                    parts.reduce(0) { $0 + ($1.columns.first { $0.name == name }?.values?.count ?? 0) })
                for k in parts.indices {
                    guard let i = parts[k].columns.firstIndex(where: { $0.name == name }) else { continue }
                    all += parts[k].columns[i].values ?? []
                    parts[k].columns[i].values = nil
                }
                gathered[name] = all
                releaseFreeMemory()
            }
        }
        var merged = parts[0]
        for k in 1..<parts.count { merged.merge(parts[k]) }
        for i in merged.columns.indices where gathered[merged.columns[i].name] != nil {
            merged.columns[i].values = gathered.removeValue(forKey: merged.columns[i].name)
        }
        return try merged.profile(name: name, target: target)
    }

    /// One pass over a reader's rows into column profiles.
    struct Pass: @unchecked Sendable {
        let source: String
        let keepValues: Bool
        var columns: [ColumnProfile] = []
        var rows: Int64 = 0
        /// Column types from the sample; a column not in it is categorical.
        var types: [String: String] = [:]
        var sampled = 0
        /// Whether each column is numeric (so the hot loop compares no strings).
        private var numeric: [Bool] = []
        /// The sampled rows' size in bytes, and how many rows to make room for in each column's kept values.
        var sampleBytes = 0
        var expectedRows = 0
        private var pending: [TableRow] = []
        /// Per categorical column, the values seen lately, counted by their bytes (no string made or hashed).
        private var recent: [RecentValues] = []

        init(source: String, keepValues: Bool) {
            self.source = source
            self.keepValues = keepValues
        }

        /// Reads up to `rows` rows and types the columns seen so far from them (they are profiled by `run`).
        mutating func sample(_ reader: TableReader, rows: Int, categorical: Set<String>) throws {
            var row = TableRow()
            while pending.count < rows, try reader.next(into: &row) { pending.append(row) }
            sampled = pending.count
            sampleBytes = pending.reduce(0) { $0 + $1.bytes.count }
            for (index, name) in reader.columns.enumerated() where types[name] == nil {
                var present = false
                var numeric = !categorical.contains(name)
                for sampled in pending where numeric && index < sampled.count && !sampled.nulls[index] {
                    let range = sampled.range(index)
                    sampled.bytes.withUnsafeBufferPointer { b in
                        if isMissing(b, range) { return }
                        present = true
                        if number(b, range) == nil { numeric = false }
                    }
                }
                types[name] = numeric && present ? "numeric" : "categorical"
            }
        }

        /// Profiles the sampled rows, then every row left in `reader`.
        mutating func run(_ reader: TableReader) throws {
            for row in pending { try add(row, reader) }
            pending = []
            var row = TableRow()
            while try reader.next(into: &row) { try add(row, reader) }
            flushRecent()
        }

        private mutating func add(_ row: TableRow, _ reader: TableReader) throws {
            rows += 1
            while columns.count < reader.columns.count {
                let name = reader.columns[columns.count]
                var column = ColumnProfile(name: name, type: types[name] ?? "categorical")
                if keepValues {
                    if column.type == "numeric" {
                        column.values = []
                        column.values?.reserveCapacity(expectedRows)
                    } else {
                        column.exactCounts = [:]
                    }
                }
                columns.append(column)
                numeric.append(column.type == "numeric")
            }
            while recent.count < columns.count { recent.append(RecentValues()) }
            try row.bytes.withUnsafeBufferPointer { b in
                try columns.withUnsafeMutableBufferPointer { columns in
                    for i in 0..<row.count {
                        columns[i].count += 1
                        let range = row.range(i)
                        if row.nulls[i] || isMissing(b, range) {
                            columns[i].missing += 1
                        } else if numeric[i] {
                            if let x = number(b, range) {
                                if x.isFinite { columns[i].addNumber(x) } else { columns[i].nonFinite += 1 }
                            } else {
                                columns[i].invalid += 1
                            }
                        } else {
                            let field = UnsafeBufferPointer(rebasing: b[range])
                            if recent[i].count(field) { continue }
                            // ASCII is valid UTF-8: decoding it cannot replace anything.
                            let text =
                                field.allSatisfy { $0 < 0x80 }
                                ? String(decoding: field, as: UTF8.self) : String(validating: field, as: UTF8.self)
                            guard let text else {
                                throw TableError(
                                    file: source, row: reader.row,
                                    detail: "column \(columns[i].name) is not UTF-8 text")
                            }
                            if let (evicted, n) = recent[i].insert(field, text) {
                                columns[i].countText(evicted, n, exactly: keepValues)
                            }
                        }
                    }
                }
            }
        }

        /// Counts what the recent-value caches still hold into the columns (at the end of a pass).
        private mutating func flushRecent() {
            for i in recent.indices where i < columns.count {
                for (text, n) in recent[i].drain() { columns[i].countText(text, n, exactly: keepValues) }
            }
        }

        /// Folds in the pass over the next chunk.
        mutating func merge(_ other: Pass) {
            rows += other.rows
            let index = Dictionary(columns.enumerated().map { ($1.name, $0) }, uniquingKeysWith: { a, _ in a })
            for column in other.columns {
                if let i = index[column.name] {
                    columns[i].merge(column)
                } else {
                    columns.append(column)
                    numeric.append(column.type == "numeric")
                }
            }
        }

        /// The profile of every row read: a row without a column (a short CSV row, a JSON line without the key)
        /// counts as a missing value of it, so every column counts every row, whichever order columns came in.
        func profile(name: String, target: String?) throws -> Profile {
            if let target, !columns.contains(where: { $0.name == target }) {
                throw TableError(file: source, row: 1, detail: "no column named \(target) (the target)")
            }
            var columns = columns
            for i in columns.indices {
                columns[i].missing += rows - columns[i].count
                columns[i].count = rows
                columns[i].momentsFromValues()
            }
            return Profile(name: name, source: source, rows: rows, target: target, columns: columns)
        }
    }

    /// Clinger's fast path: `[-]digits[.digits]` with at most 15 significant digits is an integer below 2^53 scaled
    /// by a power of ten at most 10^22, both exact in a Double, so one multiplication or division is correctly
    /// rounded: the same value strtod gives, without its cost. Anything else returns nil (strtod decides).
    @inline(__always)
    static func fastDecimal(_ b: UnsafeBufferPointer<UInt8>, _ range: Range<Int>) -> Double? {
        var i = range.lowerBound
        let end = range.upperBound
        var negative = false
        if b[i] == 0x2D || b[i] == 0x2B {
            negative = b[i] == 0x2D
            i += 1
        }
        var mantissa: UInt64 = 0
        var digits = 0
        var scale = 0
        var point = -1
        let first = i
        while i < end {
            let c = b[i] &- 0x30
            if c < 10 {
                if mantissa != 0 || c != 0 { digits += 1 }
                mantissa = mantissa &* 10 &+ UInt64(c)
            } else if c == 0x2E &- 0x30 && point < 0 {
                point = i
            } else {
                return nil
            }
            i += 1
        }
        if point >= 0 { scale = end - point - 1 }
        // No digit at all ("-", "."), too many to be exact, or a scale past the table.
        guard end - first > (point >= 0 ? 1 : 0), digits <= 15, scale <= 22 else { return nil }
        let value = scale == 0 ? Double(mantissa) : Double(mantissa) / powersOfTen[scale]
        return negative ? -value : value
    }

    static let powersOfTen: [Double] = (0...22).map { pow(10.0, Double($0)) }

    @inline(__always)
    static func isMissing(_ b: UnsafeBufferPointer<UInt8>, _ range: Range<Int>) -> Bool {
        // Every marker starts with N or n.
        range.isEmpty
            || (range.count <= 4 && b[range.lowerBound] | 0x20 == 0x6E && missingMarkers.contains(pack(b, range)))
    }

    /// The field as a number (decimal or exponent notation, inf, nan), parsed in place (the field is followed by
    /// a NUL); nil when it is not one entirely.
    static func number(_ b: UnsafeBufferPointer<UInt8>, _ range: Range<Int>) -> Double? {
        guard !range.isEmpty, range.count < 64, b[range.lowerBound] != 0x20 else { return nil }
        if let fast = fastDecimal(b, range) { return fast }
        guard let base = b.baseAddress else { return nil }
        let start = UnsafeRawPointer(base + range.lowerBound).assumingMemoryBound(to: CChar.self)
        var end: UnsafeMutablePointer<CChar>?
        let value = strtod(start, &end)
        guard let end, UnsafePointer(end) == start + range.count else { return nil }
        // strtod also reads hexadecimal floats; a CSV number is decimal.
        for i in range where b[i] == 0x78 || b[i] == 0x58 { return nil }
        return value
    }
}

/// The last values a categorical column held, in 64 slots chosen by a hash of their bytes: a value seen again
/// (most categorical columns have few values) is counted by comparing bytes, without making or hashing a string.
/// A value displaced from its slot has its count handed back (`insert`), the rest at the end (`drain`), in an
/// order fixed by the data, so the same file still gives the same profile.
struct RecentValues {
    private static let slots = 64
    private static let width = 32
    private var bytes = [UInt8](repeating: 0, count: RecentValues.slots * RecentValues.width)
    private var lengths = [Int](repeating: -1, count: RecentValues.slots)
    private var texts = [String](repeating: "", count: RecentValues.slots)
    private var counts = [Int64](repeating: 0, count: RecentValues.slots)

    private static func slot(_ field: UnsafeBufferPointer<UInt8>) -> Int {
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in field { hash = (hash ^ UInt64(byte)) &* 0x100_0000_01b3 }
        return Int(truncatingIfNeeded: (hash ^ (hash >> 29)) & UInt64(slots - 1))
    }

    /// Counts `field` if its slot holds it; false when it must be made a string and inserted.
    mutating func count(_ field: UnsafeBufferPointer<UInt8>) -> Bool {
        guard field.count <= Self.width else { return false }
        let slot = Self.slot(field)
        guard lengths[slot] == field.count else { return false }
        let same = bytes.withUnsafeBufferPointer { held in
            guard let kept = held.baseAddress, let base = field.baseAddress else { return field.isEmpty }
            return memcmp(kept + slot * Self.width, base, field.count) == 0
        }
        if same { counts[slot] += 1 }
        return same
    }

    /// Puts `field` (as `text`, counted once) in its slot; returns what it displaced and that value's count.
    mutating func insert(_ field: UnsafeBufferPointer<UInt8>, _ text: String) -> (String, Int64)? {
        guard field.count <= Self.width else { return (text, 1) }
        let slot = Self.slot(field)
        let displaced = lengths[slot] >= 0 ? (texts[slot], counts[slot]) : nil
        bytes.withUnsafeMutableBufferPointer { held in
            for k in 0..<field.count { held[slot * Self.width + k] = field[k] }
        }
        lengths[slot] = field.count
        texts[slot] = text
        counts[slot] = 1
        return displaced
    }

    /// Every value still held with its count, slot by slot; the slots are emptied.
    mutating func drain() -> [(String, Int64)] {
        var out: [(String, Int64)] = []
        for slot in 0..<Self.slots where lengths[slot] >= 0 {
            out.append((texts[slot], counts[slot]))
            lengths[slot] = -1
            texts[slot] = ""
        }
        return out
    }
}

// MARK: Reading stored profiles back, and merging them

extension Profile {
    /// A stored profile read back (schema 1 or 2), every field checked: profiles to merge may come from anywhere
    /// (another machine, or a Spark job writing DataSketches sketches into this format).
    public init(json: JSONValue, source file: String) throws {
        func bad(_ detail: String) -> InputError { .malformed(source: file, detail: detail) }
        guard let version = json["schema_version"]?.integer(in: 1...Self.schemaVersion) else {
            throw bad("schema_version must be 1 or 2")
        }
        guard let name = json["name"]?.string, let source = json["source"]?.string else {
            throw bad("a profile needs a name and a source")
        }
        guard let rows = json["rows"]?.integer(in: 0...Self.maxRows) else {
            throw bad("rows must be a count up to 2^53")
        }
        let target: String?
        switch json["target"] {
        case .none, .some(.null): target = nil
        case .some(.string(let text)): target = text
        default: throw bad("target must be a column name or null")
        }
        guard let columns = json["columns"]?.array else { throw bad("columns must be a list") }
        var seen = Set<String>()
        let parsed = try columns.enumerated().map { i, column in
            let parsed = try ColumnProfile(
                json: column, rows: rows, version: version, source: "\(file) column \(i + 1)")
            guard seen.insert(parsed.name).inserted else { throw bad("column \(parsed.name) appears twice") }
            return parsed
        }
        self.init(name: name, source: source, rows: rows, target: target, columns: parsed)
    }

    /// Profiles of parts of one table (partitions, days, shards) merged into the profile of the whole: counts add,
    /// means and variances combine exactly, quantile sketches and frequency tables merge with their errors
    /// added. A column missing from a part had no rows there; a column's type must agree in every part.
    public static func merged(_ parts: [Profile], name: String, source: String) throws -> Profile {
        guard let first = parts.first else { throw InputError.malformed(source: "merge", detail: "no profiles") }
        let targets = Set(parts.compactMap(\.target))
        guard targets.count <= 1 else {
            throw InputError.malformed(
                source: source, detail: "the parts name different targets: \(targets.sorted().joined(separator: ", "))")
        }
        var columns: [ColumnProfile] = []
        var index: [String: Int] = [:]
        var rows: Int64 = 0
        for part in parts {
            rows += Swift.min(part.rows, Self.maxRows + 1)
            guard rows <= Self.maxRows else {
                throw InputError.malformed(source: source, detail: "more than 2^53 rows in all")
            }
            for column in part.columns {
                guard let i = index[column.name] else {
                    index[column.name] = columns.count
                    columns.append(column)
                    continue
                }
                guard columns[i].type == column.type else {
                    throw InputError.malformed(
                        source: part.source,
                        detail:
                            "column \(column.name) is \(column.type) here but \(columns[i].type) in an earlier part; profile every part with the same --categorical"
                    )
                }
                columns[i].merge(column)
            }
        }
        for column in columns where !(column.mean.isFinite && column.m2.isFinite) {
            throw InputError.malformed(
                source: source, detail: "column \(column.name)'s mean or variance overflows when the parts are merged")
        }
        // A part without a column had its rows there all missing: every column counts every row of the whole.
        for i in columns.indices {
            columns[i].missing += rows - columns[i].count
            columns[i].count = rows
        }
        return Profile(name: name, source: source, rows: rows, target: targets.first ?? first.target, columns: columns)
    }
}

extension ColumnProfile {
    init(json: JSONValue, rows: Int64, version: Int64, source: String) throws {
        func bad(_ detail: String) -> InputError { .malformed(source: source, detail: detail) }
        func counted(_ key: String) throws -> Int64 {
            guard let value = json[key]?.integer(in: 0...rows) else { throw bad("\(key) must be a count up to rows") }
            return value
        }
        guard let name = json["name"]?.string else { throw bad("a column needs a name") }
        guard let type = json["type"]?.string, type == "numeric" || type == "categorical" else {
            throw bad("type must be numeric or categorical")
        }
        self.init(name: name, type: type)
        count = try counted("count")
        missing = try counted("missing")
        guard missing <= count else { throw bad("more missing values than values") }
        // Every column counts every row (schema 2); schema 1 counted only rows that had the column.
        guard version < 2 || count == rows else { throw bad("count must be rows (\(rows)): every row counts") }
        missing += rows - count
        count = rows
        if type == "numeric" {
            invalid = try counted("invalid")
            nonFinite = try counted("non_finite")
            let finite = count - missing - invalid - nonFinite
            guard finite >= 0 else { throw bad("missing, invalid and non-finite values add up to more than count") }
            guard let stored = json["sketch"] else { throw bad("a numeric column needs its sketch") }
            let sketch = try QuantileSketch(json: stored, source: source)
            guard sketch.count == finite else { throw bad("the sketch holds \(sketch.count) values, not \(finite)") }
            self.sketch = sketch
            if finite > 0 {
                guard let low = json["min"]?.number, let high = json["max"]?.number, let mean = json["mean"]?.number,
                    let std = json["std"]?.number, low.isFinite, high.isFinite, low <= high, mean.isFinite,
                    std.isFinite, std >= 0
                else { throw bad("min, max, mean and std must be finite numbers, min <= max, std >= 0") }
                // The summary must agree with the sketch: its extremes (DataSketches keeps them exactly; a schema 1
                // sketch holds values inside them), a mean between them, a spread no wider than they allow.
                let slack = 1e-9 * Swift.max(abs(low), abs(high))
                guard
                    version < 2 ? (low <= sketch.min && sketch.max <= high) : (low == sketch.min && high == sketch.max)
                else { throw bad("min and max (\(low), \(high)) are not the sketch's (\(sketch.min), \(sketch.max))") }
                guard mean >= low - slack, mean <= high + slack, std <= (high - low) / 2 + slack else {
                    throw bad("the mean or std do not fit between min and max")
                }
                (min, max, self.mean) = (low, high, mean)
                m2 = std * std * Double(finite)
                guard m2.isFinite else { throw bad("std is too large") }
            }
        } else {
            guard let values = json["values"]?.array, let other = json["other"]?.integer(in: 0...rows),
                let error = json["count_error"]?.integer(in: 0...rows)
            else { throw bad("values, other and count_error are needed for a categorical column") }
            var counts: [String: Int64] = [:]
            for pair in values {
                guard let items = pair.array, items.count == 2, let value = items[0].string,
                    let n = items[1].integer(in: 1...rows)
                else { throw bad("each of values must be [text, count]") }
                guard counts.updateValue(n, forKey: value) == nil else { throw bad("\(value) is listed twice") }
            }
            // Each count is at most rows (2^53), so the sum is checked as it grows, long before it could overflow.
            var listed = other
            for n in counts.values {
                listed += n
                guard listed <= count - missing else { break }
            }
            guard listed == count - missing else {
                throw bad("the listed counts and other do not add up to the \(count - missing) values present")
            }
            // A value left out of the stored top list counts at most as much as the smallest one listed (plus the
            // table's own error): that bound becomes the read-back table's error.
            let truncation = other > 0 ? (counts.values.min() ?? 0) : 0
            frequencies = FrequencyTable(counts: counts, total: count - missing, error: error + truncation)
        }
    }

    /// Folds in the same column from another part of the table.
    mutating func merge(_ other: ColumnProfile) {
        let n1 = Double(count - missing - invalid - nonFinite)
        let n2 = Double(other.count - other.missing - other.invalid - other.nonFinite)
        count += other.count
        missing += other.missing
        invalid += other.invalid
        nonFinite += other.nonFinite
        if n2 > 0 {
            // Chan, Golub and LeVeque's pairwise update: exact, whatever the parts' sizes.
            let delta = other.mean - mean
            mean += delta * n2 / (n1 + n2)
            m2 += other.m2 + delta * delta * n1 * n2 / (n1 + n2)
            min = Swift.min(min, other.min)
            max = Swift.max(max, other.max)
        }
        // The sketch with the larger k takes the other in (an empty small-k part must not lower the accuracy).
        if other.sketch.k > sketch.k {
            var larger = other.sketch
            larger.merge(sketch)
            sketch = larger
        } else {
            sketch.merge(other.sketch)
        }
        frequencies.merge(other.frequencies)
        if let more = other.values { values?.append(contentsOf: more) }
        if let more = other.exactCounts { exactCounts?.merge(more, uniquingKeysWith: +) }
    }
}

/// Hands a value that is not Sendable to exactly one other thread (the first chunk's pass and reader).
private final class Handoff<Value>: @unchecked Sendable {
    let value: Value
    init(_ value: Value) { self.value = value }
}

/// Gives memory freed by worker threads back to the system (glibc keeps it in per-thread arenas otherwise), so
/// a large exact comparison does not hold its peak after the peak has passed.
func releaseFreeMemory() { gitml_release_free_memory() }
