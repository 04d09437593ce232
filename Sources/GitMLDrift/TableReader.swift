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
    public var hint: String { "fix the file or pass another one; rows are counted from 1, the header included" }
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
    private var columnIndex: [String: Int] = [:]

    /// Opens `path` (shown as `name` in errors); the format follows the extension unless given.
    public init(path: String, name: String, format: Format? = nil, maxRow: Int = 16 << 20) throws {
        self.path = path
        self.name = name
        self.format = format ?? (path.hasSuffix(".jsonl") || path.hasSuffix(".ndjson") ? .jsonLines : .csv)
        self.maxRow = maxRow
        fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else {
            throw TableError(file: name, row: 0, detail: "cannot open: \(String(cString: strerror(errno)))")
        }
        try fill()
        if end - start >= 3 && buffer[start] == 0xEF && buffer[start + 1] == 0xBB && buffer[start + 2] == 0xBF {
            start += 3
        }
        if self.format == .csv {
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
            for (i, column) in columns.enumerated() where columnIndex[column] == nil { columnIndex[column] = i }
        }
    }

    deinit { close(fd) }

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
                let value: JSONValue
                do { value = try JSONParser.parse(line, source: "\(name) row \(self.row)") } catch let error
                    as GitMLError
                {
                    throw TableError(file: name, row: self.row, detail: error.message)
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

    private func fill() throws {
        if start > 0 {
            buffer.replaceSubrange(0..<(end - start), with: buffer[start..<end])
            end -= start
            start = 0
        }
        while !atEOF && end < buffer.count {
            let n = buffer.withUnsafeMutableBytes { raw -> Int in
                guard let base = raw.baseAddress else { return 0 }
                return read(fd, base + end, raw.count - end)
            }
            if n < 0 {
                if errno == EINTR { continue }
                throw TableError(file: name, row: row, detail: "read failed: \(String(cString: strerror(errno)))")
            }
            if n == 0 { atEOF = true } else { end += n }
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
                row.bytes += buffer[start..<run]
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
            row.bytes += buffer[start..<run]
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
