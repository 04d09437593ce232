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
    /// The column names as bytes, for matching keys without making strings (columns only grow).
    private var columnBytes: [[UInt8]] = []

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
            while let line = try nextLine() {
                if line.allSatisfy({ $0 == 0x20 || $0 == 0x09 || $0 == 0x0D }) { continue }
                if scanFlatObject(line, into: &row) { return true }
                // Not a flat object of scalars (or not valid JSON): the full parser decides, and names the error.
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

    /// Reads a JSON line that is a flat object of scalars (`{"age": 34, "country": "DE", "score": null}`) straight
    /// into `row`, without building a value: numbers, true and false keep their text (the profile parses numbers
    /// in place), strings are taken as they are (one with an escape goes to the full parser). Keys are matched as
    /// bytes against the columns already known. False (and `row` undefined) for anything else, which the full
    /// parser then reads: a new column (so columns are added in the order it adds them), nested values, a syntax
    /// error, a duplicate key.
    private func scanFlatObject(_ line: [UInt8], into row: inout TableRow) -> Bool {
        var i = 0
        let n = line.count
        func skip() { while i < n && (line[i] == 0x20 || line[i] == 0x09 || line[i] == 0x0D) { i += 1 } }
        func string() -> Range<Int>? {
            guard i < n, line[i] == 0x22 else { return nil }
            i += 1
            let start = i
            while i < n && line[i] != 0x22 {
                if line[i] == 0x5C || line[i] < 0x20 { return nil }
                i += 1
            }
            guard i < n else { return nil }
            defer { i += 1 }
            return start..<i
        }
        skip()
        guard i < n, line[i] == 0x7B else { return false }
        i += 1
        if fieldSpans.count < columns.count { fieldSpans = Array(repeating: (0, 0, 0), count: columns.count) }
        generation &+= 1
        var present = 0
        skip()
        if i < n && line[i] == 0x7D {
            i += 1
        } else {
            while true {
                skip()
                guard let key = string(), let index = knownColumn(line, key) else { return false }
                skip()
                guard i < n, line[i] == 0x3A else { return false }
                i += 1
                skip()
                guard i < n else { return false }
                var start = i
                var end = i
                var kind = 1  // 1: a value, 2: null
                if line[i] == 0x22 {
                    guard let value = string() else { return false }
                    (start, end) = (value.lowerBound, value.upperBound)
                } else if line[i] == 0x7B || line[i] == 0x5B {
                    return false
                } else {
                    while i < n && line[i] != 0x2C && line[i] != 0x7D && line[i] != 0x20 && line[i] != 0x09 { i += 1 }
                    end = i
                    let first = line[start]
                    let text = line[start..<end]
                    if first == UInt8(ascii: "n") {
                        guard text.elementsEqual("null".utf8) else { return false }
                        kind = 2
                    } else if first == UInt8(ascii: "t") {
                        guard text.elementsEqual("true".utf8) else { return false }
                    } else if first == UInt8(ascii: "f") {
                        guard text.elementsEqual("false".utf8) else { return false }
                    } else {
                        // Anything but a JSON number goes to the full parser, which names the error.
                        guard Self.isJSONNumber(text) else { return false }
                    }
                }
                // A key given twice on the line: the full parser names the error.
                guard fieldSpans[index].kind != generation &* 4 &+ 1 && fieldSpans[index].kind != generation &* 4 &+ 2
                else { return false }
                fieldSpans[index] = (start, end, generation &* 4 &+ kind)
                present = max(present, index + 1)
                skip()
                guard i < n else { return false }
                if line[i] == 0x2C {
                    i += 1
                    continue
                }
                guard line[i] == 0x7D else { return false }
                i += 1
                break
            }
        }
        skip()
        guard i == n else { return false }
        row.clear()
        for index in 0..<present {
            let span = fieldSpans[index]
            if span.kind == generation &* 4 &+ 1 {
                row.bytes += line[span.start..<span.end]
                row.endField()
            } else {
                row.endField(null: true)
            }
        }
        return true
    }

    /// Whether `text` is a number by JSON's grammar: `-? (0 | [1-9][0-9]*) (. [0-9]+)? ([eE] [+-]? [0-9]+)?`.
    static func isJSONNumber(_ text: ArraySlice<UInt8>) -> Bool {
        var i = text.startIndex
        let end = text.endIndex
        func digits() -> Int {
            let from = i
            while i < end && text[i] >= 0x30 && text[i] <= 0x39 { i += 1 }
            return i - from
        }
        if i < end && text[i] == 0x2D { i += 1 }
        guard i < end else { return false }
        if text[i] == 0x30 {
            i += 1
        } else if digits() == 0 {
            return false
        }
        if i < end && text[i] == 0x2E {
            i += 1
            guard digits() > 0 else { return false }
        }
        if i < end && (text[i] == 0x65 || text[i] == 0x45) {
            i += 1
            if i < end && (text[i] == 0x2B || text[i] == 0x2D) { i += 1 }
            guard digits() > 0 else { return false }
        }
        return i == end
    }

    /// The index of the known column whose name is `line[key]`, compared as bytes (no string is made).
    private func knownColumn(_ line: [UInt8], _ key: Range<Int>) -> Int? {
        if columnBytes.count < columns.count { columnBytes = columns.map { Array($0.utf8) } }
        for (index, name) in columnBytes.enumerated() where name.count == key.count {
            if name.elementsEqual(line[key]) { return index }
        }
        return nil
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

    /// Copies buffer bytes into the row's current field (a memcpy, not an element-by-element append).
    @inline(__always)
    private func append(_ range: Range<Int>, to row: inout TableRow) {
        guard !range.isEmpty else { return }
        buffer.withUnsafeBufferPointer { row.bytes.append(contentsOf: UnsafeBufferPointer(rebasing: $0[range])) }
    }

    /// One line (without its line break), bounded by `maxRow`.
    private func nextLine() throws -> [UInt8]? {
        if start == end { try fill() }
        if start == end { return nil }
        row += 1
        var line: [UInt8] = []
        while true {
            if start == end {
                try fill()
                if start == end { return line }
            }
            if let newline = buffer[start..<end].firstIndex(of: 0x0A) {
                line += buffer[start..<newline]
                start = newline + 1
                guard line.count <= maxRow else {
                    throw TableError(file: name, row: row, detail: "longer than \(maxRow >> 20) MiB")
                }
                return line
            }
            line += buffer[start..<end]
            start = end
            guard line.count <= maxRow else {
                throw TableError(file: name, row: row, detail: "longer than \(maxRow >> 20) MiB")
            }
        }
    }
}
