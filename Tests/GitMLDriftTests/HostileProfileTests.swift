import Foundation
import GitMLBasics
import Testing

@testable import GitMLDrift

/// A profile as JSON text, from a real table: one numeric and one categorical column.
private func storedProfile(rows: Int = 200) throws -> JSONValue {
    var numbers = ColumnProfile(name: "x", type: "numeric")
    var categories = ColumnProfile(name: "c", type: "categorical")
    for i in 0..<rows {
        numbers.count += 1
        numbers.addNumber(Double(i % 17))
        categories.count += 1
        categories.frequencies.add(["a", "b"][i % 2])
    }
    let profile = Profile(name: "p", source: "p.csv", rows: Int64(rows), target: nil, columns: [numbers, categories])
    return try JSONParser.parse(profile.bytes, source: "p")
}

private func replacing(_ json: JSONValue, column: Int, _ key: String, with value: JSONValue) -> JSONValue {
    guard case .object(var top) = json, case .array(var columns) = top["columns"] ?? .null,
        case .object(var object) = columns[column]
    else { return json }
    object[key] = value
    columns[column] = .object(object)
    top["columns"] = .array(columns)
    return .object(top)
}

private func rejected(_ json: JSONValue, saying text: String) {
    #expect {
        _ = try Profile(json: json, source: "p.json")
    } throws: { error in
        guard let error = error as? GitMLError else { return false }
        return error.message.contains(text) && !error.message.contains("\n")
    }
}

@Suite("Hostile profiles and tables")
struct HostileProfileTests {
    @Test("category counts that would overflow when added are an error, not a trap")
    func categoryOverflow() throws {
        let big = JSONValue.int(1 << 53)
        guard case .object(var top) = try storedProfile(), let columns = top["columns"]?.array else { return }
        top["rows"] = big
        top["columns"] = .array([columns[1]])
        var json = JSONValue.object(top)
        json = replacing(json, column: 0, "count", with: big)
        json = replacing(
            json, column: 0, "values", with: .array((0..<1025).map { .array([.string("v\($0)"), big]) }))
        rejected(json, saying: "do not add up")
    }

    @Test("a schema 1 sketch whose level weights wrap around 2^64, or with more values than k keeps, is refused")
    func schemaOneWeights() throws {
        var json = try storedProfile()
        guard case .object(var top) = json else { return }
        top["schema_version"] = .int(1)
        json = .object(top)
        var levels: [JSONValue] = Array(repeating: .array([]), count: 39)
        levels.append(.array(Array(repeating: .double(1), count: 40)))
        let sketch: JSONValue = .object([
            "kind": .string("kll"), "k": .int(200), "count": .int(183), "levels": .array(levels),
        ])
        rejected(replacing(json, column: 0, "sketch", with: sketch), saying: "weigh")
        let stuffed: JSONValue = .object([
            "kind": .string("kll"), "k": .int(8), "count": .int(100_000),
            "levels": .array([.array(Array(repeating: .double(1), count: 100_000))]),
        ])
        rejected(replacing(json, column: 0, "sketch", with: stuffed), saying: "more values than")
    }

    @Test("a summary that disagrees with its sketch (min, max, mean, std) is refused")
    func inconsistentSummary() throws {
        let json = try storedProfile()
        rejected(replacing(json, column: 0, "min", with: .double(-5)), saying: "not the sketch's")
        rejected(replacing(json, column: 0, "mean", with: .double(-5e9)), saying: "do not fit")
        rejected(replacing(json, column: 0, "std", with: .double(100)), saying: "do not fit")
        rejected(replacing(json, column: 0, "count", with: .int(150)), saying: "count must be rows")
        _ = try Profile(json: json, source: "p.json")
    }

    @Test("merged parts with different columns count every row: a column a part lacks is missing there")
    func mergeMissingColumns() throws {
        let a = try Profile(json: try storedProfile(rows: 100), source: "a")
        var bOnly = try Profile(json: try storedProfile(rows: 300), source: "b")
        bOnly.columns.removeLast()
        let merged = try Profile.merged([a, bOnly], name: "m", source: "m")
        let c = try #require(merged.columns.first { $0.name == "c" })
        #expect(merged.rows == 400 && c.count == 400 && c.missing == 300)
    }

    @Test("an empty sketch of small k merged first does not lower the merged profile's accuracy")
    func mergeKeepsLargerK() throws {
        let part = try Profile(json: try storedProfile(), source: "a")
        var empty = part
        empty.columns[0] = ColumnProfile(name: "x", type: "numeric")
        empty.columns[0].sketch = QuantileSketch(k: 8)
        empty.columns[0].count = part.rows
        empty.columns[0].missing = part.rows
        let merged = try Profile.merged([empty, part], name: "m", source: "m")
        #expect(merged.columns[0].sketch.k == QuantileSketch.defaultK)
    }

    @Test("a CSV whose header names a column twice is refused at the header, whatever the file's size")
    func duplicateHeader() throws {
        let path = FileManager.default.temporaryDirectory.path + "/dup-\(UUID().uuidString.prefix(8)).csv"
        try "x,y,x\n1,2,3\n".write(toFile: path, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(atPath: path) }
        #expect {
            _ = try ProfileBuilder.build(path: path, source: "dup.csv", name: "d")
        } throws: {
            ($0 as? TableError)?.message
                == "dup.csv: row 1: column x appears twice in the header (columns 1 and 3); rename one"
        }
    }

    @Test("a table read from a FIFO (a pipe a producer writes into) is read to its end")
    func fifo() throws {
        let path = FileManager.default.temporaryDirectory.path + "/fifo-\(UUID().uuidString.prefix(8)).csv"
        #expect(mkfifo(path, 0o600) == 0)
        defer { try? FileManager.default.removeItem(atPath: path) }
        let writer = Thread {
            guard let handle = FileHandle(forWritingAtPath: path) else { return }
            handle.write(Data("x\n1\n2\n3\n".utf8))
            try? handle.close()
        }
        writer.start()
        let profile = try ProfileBuilder.build(path: path, source: "fifo", name: "f")
        #expect(profile.rows == 3 && profile.columns.first?.max == 3)
    }

    @Test("terminal output shows control characters from data as escapes")
    func terminalEscapes() {
        #expect(TerminalText.escape("a\u{1B}[2Jb\nc\u{9B}") == "a\\u{1B}[2Jb\\nc\\u{9B}")
        #expect(TerminalText.table([["A", "B"], ["x\ty", "z"]]) == "A     B\nx\\ty  z")
        #expect(
            DriftReport.text([], title: "t\u{7}").hasPrefix("t\\u{7}\n"), "the title, like every cell, is escaped")
    }
}
