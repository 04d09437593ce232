import GitMLBasics

#if canImport(Glibc)
    import Glibc
#endif

/// A problem with a data file: one line naming the file and the row.
public struct TableError: GitMLError {
    public let file: String
    public let row: Int
    public let detail: String

    public var message: String { "\(file): row \(row): \(detail)" }
    public var hint: String { "fix the file or pass another one; rows are counted from 1 (a CSV's header is row 1)" }
    public var code: String { "malformed-table" }
}

/// One row's fields, stored end to end in one reusable buffer, each followed by a NUL byte (so a number can be
/// parsed in place). `count` fields were present; a short row has fewer than there are columns.
public struct TableRow {
    public internal(set) var bytes: [UInt8] = []
    /// The start of field i is `i == 0 ? 0 : ends[i - 1] + 1`; it ends before `ends[i]` (its NUL).
    public internal(set) var ends: [Int] = []
    /// Set for a JSON null (a missing value that is not an empty string).
    public internal(set) var nulls: [Bool] = []

    public var count: Int { ends.count }

    public init() {}

    mutating func clear() {
        bytes.removeAll(keepingCapacity: true)
        ends.removeAll(keepingCapacity: true)
        nulls.removeAll(keepingCapacity: true)
    }

    mutating func endField(null: Bool = false) {
        ends.append(bytes.count)
        bytes.append(0)
        nulls.append(null)
    }

    public func range(_ i: Int) -> Range<Int> { (i == 0 ? 0 : ends[i - 1] + 1)..<ends[i] }

    /// Field i's bytes (copied; for tests and small tables).
    public func field(_ i: Int) -> [UInt8] { Array(bytes[range(i)]) }
}

/// Streams the rows of a CSV (RFC 4180: quoted fields with commas, quotes and newlines; CRLF or LF; a UTF-8
/// BOM) or a JSON-lines file, in constant memory: a file is read in 1 MiB blocks and no row may exceed `maxRow`
/// bytes, so a 2 GB line is an error at its first `maxRow` bytes, not an allocation.
public final class TableReader {
    public enum Format: Sendable { case csv, jsonLines }

    /// The header (CSV), or the keys in first-seen order (JSON lines; they grow as new keys appear).
    public private(set) var columns: [String] = []
    /// Rows read so far, the header included.
    public private(set) var row = 0

    private let path: String
    private let name: String
    private let format: Format
    private let maxRow: Int
    private let fd: Int32
    private var buffer = [UInt8](repeating: 0, count: 1 << 20)
    private var start = 0
    private var end = 0
    private var atEOF = false
    /// The file offset of the next read, and where reading stops.
    private var position = 0
    private var limit = Int.max
    private var ranged = false
    private var columnIndex: [String: Int] = [:]
    /// Per column, where its value lies on the line being scanned; `kind` is `generation * 4 + 1` (a value) or
    /// `+ 2` (null) for the current line, anything else for an absent field.
    private var fieldSpans: [(start: Int, end: Int, kind: Int)] = []
    private var generation = 0
    /// The column names as bytes end to end, and where each ends, for matching keys without making strings
    /// (columns only grow).
    private var columnNames: [UInt8] = []
    private var columnNameEnds: [Int] = []

    /// Opens `path` (shown as `name` in errors); the format follows the extension unless given. With `range`, only
    /// those bytes are read (a chunk of the file that starts at a row); with `header`, the CSV's columns are those
    /// (a chunk after the first has no header row).
    public init(
        path: String, name: String, format: Format? = nil, maxRow: Int = 16 << 20, range: Range<Int>? = nil,
        header: [String]? = nil
    ) throws {
        self.path = path
        self.name = name
        self.format = format ?? Self.format(of: path)
        self.maxRow = maxRow
        fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else {
            throw TableError(file: name, row: 0, detail: "cannot open: \(String(cString: strerror(errno)))")
        }
        if let range {
            position = range.lowerBound
            limit = range.upperBound
            ranged = true
        }
        try fill()
        if (range?.lowerBound ?? 0) == 0,
            end - start >= 3 && buffer[start] == 0xEF && buffer[start + 1] == 0xBB && buffer[start + 2] == 0xBF
        {
            start += 3
        }
        if let header {
            columns = header
            for (i, column) in columns.enumerated() where columnIndex[column] == nil { columnIndex[column] = i }
        } else if self.format == .csv {
            var header = TableRow()
            guard try nextCSVRecord(into: &header) else {
                throw TableError(file: name, row: 1, detail: "the file is empty: a CSV needs a header row")
            }
            columns = try (0..<header.count).map { i in
                guard let text = String(validating: header.field(i), as: UTF8.self) else {
                    throw TableError(file: name, row: 1, detail: "column \(i + 1)'s name is not UTF-8")
                }
                return text
            }
            for (i, column) in columns.enumerated() {
                if let first = columnIndex[column] {
                    throw TableError(
                        file: name, row: 1,
                        detail:
                            "column \(column) appears twice in the header (columns \(first + 1) and \(i + 1)); rename one"
                    )
                }
                columnIndex[column] = i
            }
        }
    }

    deinit { close(fd) }

    /// JSON lines for `.jsonl` and `.ndjson`, CSV for anything else.
    public static func format(of path: String) -> Format {
        path.hasSuffix(".jsonl") || path.hasSuffix(".ndjson") ? .jsonLines : .csv
    }

    /// The next row as one optional field per column (nil: the row had no such field), or nil at the end.
    public func next() throws -> [[UInt8]?]? {
        var row = TableRow()
        guard try next(into: &row) else { return nil }
        return (0..<columns.count).map { i in i < row.count ? (row.nulls[i] ? [] : row.field(i)) : nil }
    }

    /// Reads the next row into `row` (reusing its storage); false at the end of the file. A CSV row with more fields
    /// than the header is an error; a blank line is skipped.
    public func next(into row: inout TableRow) throws -> Bool {
        switch format {
        case .csv:
            while true {
                guard try nextCSVRecord(into: &row) else { return false }
                if row.count == 1 && row.ends[0] == 0 && columns.count > 1 { continue }  // a blank line
                guard row.count <= columns.count else {
                    throw TableError(
                        file: name, row: self.row,
                        detail: "\(row.count) fields, but the header names \(columns.count) columns")
                }
                return true
            }
        case .jsonLines:
            while let range = try nextLine() {
                let scanned = buffer.withUnsafeBufferPointer { b -> Bool? in
                    if b[range].allSatisfy({ $0 == 0x20 || $0 == 0x09 || $0 == 0x0D }) { return nil }
                    return scanFlatObject(b, range, into: &row)
                }
                guard let scanned else { continue }  // a blank line
                if scanned { return true }
                // Not a flat object of scalars (or not valid JSON): the full parser decides, and names the error.
                let line = Array(buffer[range])
                let value: JSONValue
                do { value = try JSONParser.parse(line, source: "") } catch let error as GitMLError {
                    // The parser names its source first; the table error names the file and row itself.
                    let message = error.message.hasPrefix(": ") ? String(error.message.dropFirst(2)) : error.message
                    throw TableError(file: name, row: self.row, detail: message)
                }
                guard case .object(let members) = value else {
                    throw TableError(file: name, row: self.row, detail: "a JSON line must be an object")
                }
                for key in members.keys.sorted() where columnIndex[key] == nil {
                    columnIndex[key] = columns.count
                    columns.append(key)
                }
                var fields = [JSONValue?](repeating: nil, count: columns.count)
                for (key, member) in members { if let index = columnIndex[key] { fields[index] = member } }
                // Fields up to the last present one; the rest of the row is absent.
                let present = (fields.lastIndex { $0 != nil } ?? -1) + 1
                row.clear()
                for i in 0..<present {
                    switch fields[i] {
                    case .none: row.endField(null: true)
                    case .some(.null): row.endField(null: true)
                    case .some(.string(let text)):
                        row.bytes += text.utf8
                        row.endField()
                    case .some(let other):
                        row.bytes += other.description.utf8
                        row.endField()
                    }
                }
                return true
            }
            return false
        }
    }

    /// Reads a JSON line (`b[line]`) that is a flat object of scalars (`{"age": 34, "country": "DE", "score": null}`)
    /// straight into `row`, without building a value: numbers, true and false keep their text (the profile parses
    /// numbers in place), strings are taken as they are (one with an escape goes to the full parser). Keys are
    /// matched as bytes against the columns already known, the column after the previous key's first. False (and
    /// `row` undefined) for anything else, which the full parser then reads: a new column (so columns are added in
    /// the order it adds them), nested values, a syntax error, a duplicate key.
    private func scanFlatObject(_ b: UnsafeBufferPointer<UInt8>, _ line: Range<Int>, into row: inout TableRow) -> Bool {
        if columnNameEnds.count < columns.count {
            columnNames = Array(columns.joined().utf8)
            columnNameEnds = []
            var total = 0
            for column in columns {
                total += column.utf8.count
                columnNameEnds.append(total)
            }
        }
        if fieldSpans.count < columns.count { fieldSpans = Array(repeating: (0, 0, 0), count: columns.count) }
        generation &+= 1
        let current = generation &* 4
        let scanned = columnNames.withUnsafeBufferPointer { names in
            columnNameEnds.withUnsafeBufferPointer { nameEnds in
                fieldSpans.withUnsafeMutableBufferPointer { spans in
                    Self.scan(b, line, names: names, nameEnds: nameEnds, spans: spans, current: current)
                }
            }
        }
        guard let present = scanned else { return false }
        row.clear()
        for index in 0..<present {
            let span = fieldSpans[index]
            if span.kind == current &+ 1 {
                row.bytes.append(contentsOf: UnsafeBufferPointer(rebasing: b[span.start..<span.end]))
                row.endField()
            } else {
                row.endField(null: true)
            }
        }
        return true
    }

    /// The scanner behind `scanFlatObject`: fills `spans` (kind `current + 1` a value, `current + 2` null) and
    /// returns how many columns the row spans, or nil when the full parser must read the line.
    private static func scan(
        _ b: UnsafeBufferPointer<UInt8>, _ line: Range<Int>, names: UnsafeBufferPointer<UInt8>,
        nameEnds: UnsafeBufferPointer<Int>, spans: UnsafeMutableBufferPointer<(start: Int, end: Int, kind: Int)>,
        current: Int
    ) -> Int? {
        var i = line.lowerBound
        let n = line.upperBound
        func skip() { while i < n && (b[i] == 0x20 || b[i] == 0x09 || b[i] == 0x0D) { i += 1 } }
        func string() -> Range<Int>? {
            guard i < n, b[i] == 0x22 else { return nil }
            i += 1
            let start = i
            while i < n && b[i] != 0x22 {
                if b[i] == 0x5C || b[i] < 0x20 { return nil }
                i += 1
            }
            guard i < n else { return nil }
            defer { i += 1 }
            return start..<i
        }
        func word(_ text: StaticString, _ range: Range<Int>) -> Bool {
            guard range.count == text.utf8CodeUnitCount, let base = b.baseAddress else { return false }
            return memcmp(base + range.lowerBound, text.utf8Start, range.count) == 0
        }
        /// The known column named `b[key]`: the one after `previous` first (lines usually keep one key order).
        func column(_ key: Range<Int>, after previous: Int) -> Int? {
            let count = nameEnds.count
            guard count > 0 else { return nil }
            var index = previous + 1 < count ? previous + 1 : 0
            for _ in 0..<count {
                let from = index == 0 ? 0 : nameEnds[index - 1]
                if nameEnds[index] - from == key.count {
                    var k = 0
                    while k < key.count && b[key.lowerBound + k] == names[from + k] { k += 1 }
                    if k == key.count { return index }
                }
                index = index + 1 < count ? index + 1 : 0
            }
            return nil
        }
        skip()
        guard i < n, b[i] == 0x7B else { return nil }
        i += 1
        var present = 0
        var previous = -1
        skip()
        if i < n && b[i] == 0x7D {
            i += 1
        } else {
            while true {
                skip()
                guard let key = string(), let index = column(key, after: previous) else { return nil }
                previous = index
                skip()
                guard i < n, b[i] == 0x3A else { return nil }
                i += 1
                skip()
                guard i < n else { return nil }
                var start = i
                var end = i
                var kind = 1  // 1: a value, 2: null
                let first = b[i]
                if first == 0x22 {
                    guard let value = string() else { return nil }
                    (start, end) = (value.lowerBound, value.upperBound)
                } else if first == 0x7B || first == 0x5B {
                    return nil
                } else if first == 0x2D || first &- 0x30 < 10 {
                    // Anything but a JSON number goes to the full parser, which names the error.
                    end = jsonNumberEnd(b, from: start, to: n)
                    guard end > start else { return nil }
                    i = end
                } else {
                    while i < n && b[i] != 0x2C && b[i] != 0x7D && b[i] != 0x20 && b[i] != 0x09 && b[i] != 0x0D {
                        i += 1
                    }
                    end = i
                    if first == UInt8(ascii: "n") {
                        guard word("null", start..<end) else { return nil }
                        kind = 2
                    } else if first == UInt8(ascii: "t") {
                        guard word("true", start..<end) else { return nil }
                    } else {
                        guard word("false", start..<end) else { return nil }
                    }
                }
                // A key given twice on the line: the full parser names the error.
                guard spans[index].kind != current &+ 1 && spans[index].kind != current &+ 2 else { return nil }
                spans[index] = (start, end, current &+ kind)
                present = max(present, index + 1)
                skip()
                guard i < n else { return nil }
                if b[i] == 0x2C {
                    i += 1
                    continue
                }
                guard b[i] == 0x7D else { return nil }
                i += 1
                break
            }
        }
        skip()
        return i == n ? present : nil
    }

    /// Where the JSON number at `b[from]` ends, by JSON's grammar
    /// (`-? (0 | [1-9][0-9]*) (. [0-9]+)? ([eE] [+-]? [0-9]+)?`), or `from` when it is not one. The byte after
    /// it is left to the caller (`1.5x` is a number followed by a syntax error).
    static func jsonNumberEnd(_ b: UnsafeBufferPointer<UInt8>, from: Int, to end: Int) -> Int {
        var i = from
        func digits() -> Int {
            let start = i
            while i < end && b[i] &- 0x30 < 10 { i += 1 }
            return i - start
        }
        if i < end && b[i] == 0x2D { i += 1 }
        guard i < end else { return from }
        if b[i] == 0x30 {
            i += 1
        } else if digits() == 0 {
            return from
        }
        if i < end && b[i] == 0x2E {
            i += 1
            guard digits() > 0 else { return from }
        }
        if i < end && (b[i] == 0x65 || b[i] == 0x45) {
            i += 1
            if i < end && (b[i] == 0x2B || b[i] == 0x2D) { i += 1 }
            guard digits() > 0 else { return from }
        }
        return i
    }

    private func fill() throws {
        if start > 0 {
            buffer.replaceSubrange(0..<(end - start), with: buffer[start..<end])
            end -= start
            start = 0
        }
        while !atEOF && end < buffer.count {
            let wanted = min(buffer.count - end, limit - position)
            // A chunk reads at its offsets; a whole file reads on, so a pipe or a FIFO works too.
            let n =
                wanted <= 0
                ? 0
                : buffer.withUnsafeMutableBytes { raw -> Int in
                    guard let base = raw.baseAddress else { return 0 }
                    return ranged ? pread(fd, base + end, wanted, off_t(position)) : read(fd, base + end, wanted)
                }
            if n < 0 {
                if errno == EINTR { continue }
                throw TableError(file: name, row: row, detail: "read failed: \(String(cString: strerror(errno)))")
            }
            if n == 0 {
                atEOF = true
            } else {
                end += n
                position += n
            }
        }
    }

    /// Reads one CSV record into `row` (quotes removed), false at the end of the file. Unquoted bytes are copied in
    /// runs up to the next comma, quote or line break.
    private func nextCSVRecord(into row: inout TableRow) throws -> Bool {
        if start == end { try fill() }
        if start == end { return false }
        self.row += 1
        if unquotedRecord(into: &row) { return true }
        row.clear()
        var fieldStart = 0
        var inQuotes = false
        var size = 0
        while true {
            if start == end {
                try fill()
                if start == end {
                    if inQuotes {
                        throw TableError(
                            file: name, row: self.row, detail: "a quoted field is not closed before the end of the file"
                        )
                    }
                    row.endField()
                    return true
                }
            }
            if inQuotes {
                // Copy up to the next quote.
                let run = buffer.withUnsafeBufferPointer { b -> Int in
                    var i = start
                    while i < end && b[i] != 0x22 { i += 1 }
                    return i
                }
                append(start..<run, to: &row)
                size += run - start
                start = run
                if size > maxRow {
                    throw TableError(
                        file: name, row: self.row, detail: "longer than \(maxRow >> 20) MiB; is this really a CSV?")
                }
                guard start < end else { continue }
                start += 1  // the quote
                if start == end { try fill() }
                if start < end && buffer[start] == 0x22 {
                    row.bytes.append(0x22)
                    start += 1
                } else {
                    inQuotes = false
                }
                continue
            }
            let run = buffer.withUnsafeBufferPointer { b -> Int in
                var i = start
                while i < end {
                    let c = b[i]
                    if c == 0x2C || c == 0x22 || c == 0x0A || c == 0x0D { break }
                    i += 1
                }
                return i
            }
            append(start..<run, to: &row)
            size += run - start + 1
            start = run
            if size > maxRow {
                throw TableError(
                    file: name, row: self.row, detail: "longer than \(maxRow >> 20) MiB; is this really a CSV?")
            }
            guard start < end else { continue }
            let byte = buffer[start]
            start += 1
            switch byte {
            case 0x22 where row.bytes.count == fieldStart:
                inQuotes = true
            case 0x22:
                row.bytes.append(0x22)
            case 0x2C:
                row.endField()
                fieldStart = row.bytes.count
            case 0x0A:
                row.endField()
                return true
            default:  // CR, and CRLF
                if start == end { try fill() }
                if start < end && buffer[start] == 0x0A { start += 1 }
                row.endField()
                return true
            }
        }
    }

    /// The common case in one pass and one copy: a record without quotes that ends (LF or CRLF) inside the buffer
    /// is copied whole, each comma becoming a field's NUL. False (nothing consumed) otherwise.
    private func unquotedRecord(into row: inout TableRow) -> Bool {
        let first = start
        let last = end
        let found = buffer.withUnsafeBufferPointer { b -> (end: Int, next: Int)? in
            row.clear()
            var i = first
            while i < last {
                // Eight bytes at a time past the bytes that matter here (comma, quote, CR, LF: all below 0x2D): the
                // lowest byte the test flags is the first one below 0x2D.
                if i + 8 <= last, let base = b.baseAddress {
                    let word = UnsafeRawPointer(base + i).loadUnaligned(as: UInt64.self)
                    let below = (word &- 0x2D2D_2D2D_2D2D_2D2D) & ~word & 0x8080_8080_8080_8080
                    if below == 0 {
                        i += 8
                        continue
                    }
                    i += below.trailingZeroBitCount >> 3
                }
                let c = b[i]
                if c > 0x2C {
                    i += 1
                } else if c == 0x2C {
                    row.ends.append(i - first)
                    i += 1
                } else if c == 0x0A {
                    return (i, i + 1)
                } else if c == 0x0D {
                    guard i + 1 < last, b[i + 1] == 0x0A else { return nil }
                    return (i, i + 2)
                } else if c == 0x22 {
                    return nil
                } else {
                    i += 1
                }
            }
            return nil
        }
        guard let found, found.next - first <= maxRow else { return false }
        row.ends.append(found.end - first)
        append(first..<found.end, to: &row)
        row.bytes.append(0)
        row.bytes.withUnsafeMutableBufferPointer { bytes in
            for index in row.ends.indices.dropLast() { bytes[row.ends[index]] = 0 }
        }
        row.nulls.append(contentsOf: repeatElement(false, count: row.ends.count))
        start = found.next
        return true
    }

    /// Copies buffer bytes into the row's current field (a memcpy, not an element-by-element append).
    @inline(__always)
    private func append(_ range: Range<Int>, to row: inout TableRow) {
        guard !range.isEmpty else { return }
        buffer.withUnsafeBufferPointer { row.bytes.append(contentsOf: UnsafeBufferPointer(rebasing: $0[range])) }
    }

    /// The next line (without its line break) as a range of `buffer`, bounded by `maxRow`: the buffer grows
    /// until the line fits, so a line is never copied.
    private func nextLine() throws -> Range<Int>? {
        if start == end { try fill() }
        if start == end { return nil }
        row += 1
        var scanned = 0
        while true {
            let newline = buffer.withUnsafeBufferPointer { b -> Int? in
                guard let base = b.baseAddress, end > start + scanned,
                    let found = memchr(base + start + scanned, 0x0A, end - start - scanned)
                else { return nil }
                return UnsafeRawPointer(found) - UnsafeRawPointer(base)
            }
            if let newline {
                let line = start..<newline
                start = newline + 1
                guard line.count <= maxRow else {
                    throw TableError(file: name, row: row, detail: "longer than \(maxRow >> 20) MiB")
                }
                return line
            }
            scanned = end - start
            guard scanned <= maxRow else {
                throw TableError(file: name, row: row, detail: "longer than \(maxRow >> 20) MiB")
            }
            if atEOF {
                defer { start = end }
                return start..<end
            }
            if scanned == buffer.count { buffer += repeatElement(0, count: buffer.count) }
            try fill()
        }
    }
}
