import Foundation
import GitMLBasics
import Testing

@testable import GitMLDrift

private func file(_ name: String, _ bytes: [UInt8]) throws -> String {
    let directory = FileManager.default.temporaryDirectory.path + "/git-ml-drift-tests"
    try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
    let path = "\(directory)/\(UUID().uuidString.prefix(8))-\(name)"
    try Data(bytes).write(to: URL(fileURLWithPath: path))
    return path
}

private func rows(_ path: String, maxRow: Int = 16 << 20) throws -> (columns: [String], rows: [[String?]]) {
    let reader = try TableReader(path: path, name: "t", maxRow: maxRow)
    var all: [[String?]] = []
    while let row = try reader.next() { all.append(row.map { $0.map { String(decoding: $0, as: UTF8.self) } }) }
    return (reader.columns, all)
}

@Suite("Table reading")
struct TableReaderTests {
    @Test("quoted fields keep commas, quotes and newlines; BOM and CRLF are handled; short rows are missing values")
    func csvShapes() throws {
        let text = "\u{FEFF}a,b,c\r\n1,\"x, \"\"y\"\"\nz\",3\r\n4,5\r\n\r\n6,,\"\"\n"
        let (columns, all) = try rows(try file("shapes.csv", Array(text.utf8)))
        #expect(columns == ["a", "b", "c"])
        #expect(all == [["1", "x, \"y\"\nz", "3"], ["4", "5", nil], ["6", "", ""]])
    }

    @Test("long fields are split at commas, quotes, CR and LF wherever they fall in an 8-byte word")
    func csvLongFields() throws {
        var text = "a,b,c\n"
        var expected: [[String?]] = []
        for width in 0..<20 {
            let long = String(repeating: "x", count: width)
            text += "\(long),\"\(long),\"\"\(long)\",\(long)é\r\n"
            expected.append([long, "\(long),\"\(long)", "\(long)é"])
            text += "\(long)1234567,\(long),\n"
            expected.append(["\(long)1234567", long, ""])
        }
        let (columns, all) = try rows(try file("long.csv", Array(text.utf8)))
        #expect(columns == ["a", "b", "c"])
        #expect(all == expected)
    }

    @Test("a JSON line longer than the read buffer is read whole; one past the bound is an error at the bound")
    func jsonLongLine() throws {
        let big = String(repeating: "v", count: 3 << 20)
        let path = try file("long.jsonl", Array("{\"a\": \"\(big)\"}\n{\"a\": \"b\"}\n{\"a\": 1}".utf8))
        let (columns, all) = try rows(path)
        #expect(columns == ["a"])
        #expect(all.map { $0[0]?.count } == [big.count, 1, 1])
        #expect { _ = try rows(path, maxRow: 1 << 20) } throws: {
            ($0 as? TableError)?.message == "t: row 1: longer than 1 MiB"
        }
    }

    @Test(
        "bad input is one error naming the file and the row",
        arguments: [
            ("a,b\n1,2,3\n", "row 2: 3 fields, but the header names 2 columns"),
            ("a,b\n1,\"open\n", "row 2: a quoted field is not closed before the end of the file"),
            ("", "row 1: the file is empty"),
        ])
    func csvErrors(_ text: String, _ message: String) throws {
        let path = try file("bad.csv", Array(text.utf8))
        #expect { _ = try rows(path) } throws: { ($0 as? TableError)?.message.contains(message) == true }
    }

    @Test("a line longer than the bound is an error at the bound, not an allocation of the whole line")
    func longLine() throws {
        let path = try file("long.csv", Array("a\n".utf8) + [UInt8](repeating: 0x41, count: 3 << 20) + [0x0A])
        #expect { _ = try rows(path, maxRow: 1 << 20) } throws: {
            ($0 as? TableError)?.message == "t: row 2: longer than 1 MiB; is this really a CSV?"
        }
    }

    @Test("JSON lines: keys become columns as they appear; absent and null are missing; other values keep their text")
    func jsonLines() throws {
        let text = "{\"a\": 1, \"b\": \"x\"}\n\n{\"b\": null, \"c\": [1,2]}\r\n{\"a\": 2.5}\n"
        let (columns, all) = try rows(try file("t.jsonl", Array(text.utf8)))
        #expect(columns == ["a", "b", "c"])
        #expect(
            all == [["1", "x"], ["", "", "[1,2]"], ["2.5", nil, nil]], "a row has the columns known when it was read")
        let broken = try file("broken.jsonl", Array("{\"a\": 1}\n{\"a\": \n".utf8))
        #expect { _ = try rows(broken) } throws: { ($0 as? TableError)?.message.hasPrefix("t: row 2: ") == true }
    }

    @Test(
        "JSON lines: the fast scanner of flat rows reads what the full parser reads, and leaves it every error",
        arguments: [
            "{\"a\": 1.2.3, \"b\": \"x\"}", "{\"a\": tru, \"b\": \"x\"}", "{\"a\": 01, \"b\": \"x\"}",
            "{\"a\": 1, \"a\": 2}", "{\"a\": 1,}", "{\"a\": 1} x", "{\"a\": -, \"b\": \"x\"}",
            "{\"a\": 1e, \"b\": \"x\"}", "{\"a\": nul}",
        ])
    func jsonLinesFastPathErrors(_ bad: String) throws {
        let path = try file("fast.jsonl", Array("{\"a\": 1, \"b\": \"x\"}\n\(bad)\n".utf8))
        #expect { _ = try rows(path) } throws: { ($0 as? TableError)?.message.hasPrefix("t: row 2: ") == true }
    }

    @Test("JSON lines: numbers keep their text, true and false are text, escapes are decoded")
    func jsonLinesFastPathValues() throws {
        let text =
            "{\"a\": 1, \"b\": \"x\"}\n{\"b\":\"\\u0041\", \"a\":2}\n{\"b\":\"y\",\"a\":-0.5e+3}\n"
            + "{ \"a\" : true , \"b\" : false }\n{}\n"
        let (columns, all) = try rows(try file("values.jsonl", Array(text.utf8)))
        #expect(columns == ["a", "b"])
        #expect(all == [["1", "x"], ["2", "A"], ["-0.5e+3", "y"], ["true", "false"], [nil, nil]])
    }
}

@Suite("Profiles")
struct ProfileTests {
    @Test("numbers, missing markers, infinities and text in a numeric column are counted apart")
    func numericColumn() throws {
        var text = "x,city\n"
        for i in 1...1000 { text += "\(i),\(i % 3 == 0 ? "Köln" : "Paris")\n" }
        text += "NA,Paris\n,Paris\ninf,Paris\noops,Paris\n"
        let profile = try ProfileBuilder.build(path: try file("p.csv", Array(text.utf8)), source: "p.csv", name: "p")
        let x = profile.columns[0]
        #expect(x.type == "numeric" && x.count == 1004 && x.missing == 2 && x.nonFinite == 1 && x.invalid == 1)
        #expect(x.min == 1 && x.max == 1000 && abs(x.mean - 500.5) < 1e-9)
        #expect(abs(x.std - 288.6749902572095) < 1e-9)
        let city = profile.columns[1]
        #expect(city.type == "categorical")
        #expect(city.frequencies.top(2).values.map(\.0) == ["Paris", "Köln"])
        #expect(city.frequencies.top(2).values.map(\.1) == [671, 333])
    }

    @Test("numbers parse as strtod parses them, and what is not a number is not one")
    func numbers() {
        let cases = [
            "0", "-0", "+1", "1.", ".5", "-.5", "0001.5000", "123456789012345", "1234567890123456", "0.1",
            "9007199254740993", "3.14159265358979323846", "1e3", "-2.5E-3", "1.7976931348623157e308", "1e-320",
        ]
        for text in cases {
            let bytes = Array(text.utf8) + [0]
            let parsed = bytes.withUnsafeBufferPointer { ProfileBuilder.number($0, 0..<text.utf8.count) }
            #expect(parsed == strtod(text, nil), "\(text)")
        }
        for text in ["-", "+", ".", "-.", "1.2.3", "1,5", "0x10", " 1", "1e", "--1", "1-"] {
            let bytes = Array(text.utf8) + [0]
            #expect(bytes.withUnsafeBufferPointer { ProfileBuilder.number($0, 0..<text.utf8.count) } == nil, "\(text)")
        }
    }

    @Test("categorical counts are exact with hundreds of values, long ones and slot collisions, exact or sketched")
    func categoricalCounts() throws {
        var text = "c\n"
        var truth: [String: Int64] = [:]
        var state: UInt64 = 9
        for i in 0..<30_000 {
            state = state &* 6364136223846793005 &+ 1442695040888963407
            let value =
                i % 3 == 0
                ? "v\(state >> 55)" : (i % 7 == 0 ? String(repeating: "long", count: Int(state >> 61) + 8) : "a")
            text += value + "\n"
            truth[value, default: 0] += 1
        }
        let path = try file("cats.csv", Array(text.utf8))
        let exact = try ProfileBuilder.build(path: path, source: "c", name: "c", keepValues: true, chunkSize: 64 << 10)
        #expect(exact.columns[0].exactCounts == truth)
        let sketched = try ProfileBuilder.build(path: path, source: "c", name: "c", chunkSize: 64 << 10)
        #expect(sketched.columns[0].frequencies.counts == truth)
        #expect(sketched.columns[0].frequencies.error == 0)
    }

    @Test("bad UTF-8 in a text column is an error naming the row")
    func badUTF8() throws {
        let bytes = Array("a\nok\n".utf8) + [0xC3, 0x28, 0x0A]
        #expect {
            try ProfileBuilder.build(path: try file("u.csv", bytes), source: "u.csv", name: "u")
        } throws: { ($0 as? TableError)?.message == "u.csv: row 3: column a is not UTF-8 text" }
    }

    @Test("the same table gives the same profile bytes")
    func deterministic() throws {
        var text = "v\n"
        var state: UInt64 = 42
        for _ in 0..<50_000 {
            state = state &* 6364136223846793005 &+ 1
            text += "\(Double(state >> 11) / Double(1 << 53))\n"
        }
        let path = try file("d.csv", Array(text.utf8))
        let a = try ProfileBuilder.build(path: path, source: "d.csv", name: "d").bytes
        let b = try ProfileBuilder.build(path: path, source: "d.csv", name: "d").bytes
        #expect(a == b)
    }
}

@Suite("Profiles in parallel chunks")
struct ChunkedProfileTests {
    /// A table whose quoted fields hold commas and line breaks (some across chunk boundaries), with missing values,
    /// a BOM, and a column whose type the sample decides.
    private func table(rows: Int) -> [UInt8] {
        var text = "\u{FEFF}id,score,city,note\n"
        for i in 0..<rows {
            let note = i % 7 == 0 ? "\"line one\nline \"\"two\"\", end\"" : "plain \(i % 13)"
            let score = i % 11 == 0 ? "" : String(Double(i % 997) / 7)
            text += "\(i),\(score),\(["Berlin", "Paris", "Lima"][i % 3]),\(note)\n"
        }
        return Array(text.utf8)
    }

    private func compare(_ one: Profile, _ many: Profile) {
        #expect(one.rows == many.rows)
        #expect(one.columns.map(\.name) == many.columns.map(\.name))
        for (a, b) in zip(one.columns, many.columns) {
            #expect(
                a.type == b.type && a.count == b.count && a.missing == b.missing && a.invalid == b.invalid,
                "\(a.name): \(a.type) \(a.count) \(a.missing) \(a.invalid) vs \(b.type) \(b.count) \(b.missing) \(b.invalid)"
            )
            #expect(a.min == b.min && a.max == b.max && abs(a.mean - b.mean) <= 1e-9 * max(1, abs(a.mean)))
            #expect(abs(a.std - b.std) <= 1e-9 * max(1, a.std))
            #expect(a.sketch.count == b.sketch.count)
            #expect(a.values?.sorted() == b.values?.sorted())
            #expect(a.exactCounts == b.exactCounts)
            #expect(a.frequencies.top(100).values.map(\.0) == b.frequencies.top(100).values.map(\.0))
        }
    }

    @Test("chunks read on both cores give the profile one pass gives, for CSV and JSON lines, sketched or exact")
    func sameAsOnePass() throws {
        let csv = try file("chunks.csv", table(rows: 20_000))
        var lines = ""
        for i in 0..<20_000 {
            lines += i % 5 == 0 ? "{\"a\": \(i), \"b\": \"x\\ny\"}\n" : "{\"a\": \(Double(i) / 3), \"c\": null}\n"
        }
        let jsonl = try file("chunks.jsonl", Array(lines.utf8))
        for path in [csv, jsonl] {
            let size = Int(try FileManager.default.attributesOfItem(atPath: path)[.size] as? Int ?? 0)
            let boundaries = try ProfileBuilder.chunkBoundaries(path: path, size: size, chunkSize: 64 << 10)
            #expect(boundaries.count > 5, "\(boundaries)")
            for exact in [false, true] {
                let one = try ProfileBuilder.build(path: path, source: "t", name: "t", keepValues: exact)
                // The chunked reading itself (build falls back to one pass when it cannot be used).
                let many = try ProfileBuilder.chunked(
                    path: path, source: "t", name: "t", format: TableReader.format(of: path), boundaries: boundaries,
                    categorical: [], target: nil, sampleRows: 1000, keepValues: exact)
                compare(one, many)
            }
            // Deterministic: the same chunks give the same bytes.
            let again = { try ProfileBuilder.build(path: path, source: "t", name: "t", chunkSize: 64 << 10).bytes }
            #expect(try again() == again())
        }
    }

    @Test("a bad row in a later chunk is named by its row in the file; a quoted field across chunks is read whole")
    func errorsAndSpans() throws {
        var bytes = table(rows: 5_000)
        bytes += Array("5000,1,Lima,\"ok\"\n5001,2,Lima,x,extra\n".utf8)
        let bad = try file("bad-chunk.csv", bytes)
        #expect {
            _ = try ProfileBuilder.build(path: bad, source: "t", name: "t", chunkSize: 16 << 10)
        } throws: { ($0 as? TableError)?.message.hasPrefix("t: row 5003: 5 fields") == true }
        // One quoted field of 100 KiB: every chunk boundary inside it falls back to one pass.
        var long = Array("a,b\n1,\"".utf8) + [UInt8](repeating: 0x0A, count: 100 << 10) + Array("\"\n".utf8)
        for i in 0..<3000 { long += Array("\(i),x\n".utf8) }
        let spanning = try file("span.csv", long)
        let profile = try ProfileBuilder.build(path: spanning, source: "t", name: "t", chunkSize: 16 << 10)
        #expect(profile.rows == 3001)
    }
}

@Suite("Sketches")
struct SketchTests {
    @Test("KLL quantiles stay within the stated rank error, and merging two halves gives the same guarantee")
    func quantiles() {
        var values: [Double] = []
        var state: UInt64 = 7
        for _ in 0..<200_000 {
            state = state &* 2862933555777941757 &+ 3037000493
            values.append(Double(state >> 11) / Double(1 << 53) * 100)
        }
        var whole = QuantileSketch()
        var left = QuantileSketch()
        var right = QuantileSketch()
        for (i, v) in values.enumerated() {
            whole.add(v)
            if i % 2 == 0 { left.add(v) } else { right.add(v) }
        }
        left.merge(right)
        let sorted = values.sorted()
        for sketch in [whole, left] {
            #expect(sketch.count == 200_000)
            #expect(sketch.weighted.count < 3 * sketch.k)
            for q in stride(from: 0.05, through: 0.95, by: 0.05) {
                let estimate = sketch.quantile(q)!
                let rank = Double(sorted.firstIndex { $0 >= estimate } ?? sorted.count) / Double(sorted.count)
                #expect(abs(rank - q) <= sketch.rankError, "q \(q): rank \(rank)")
            }
        }
    }

    @Test("Misra-Gries keeps every value more frequent than total/capacity, undercounting by at most its error")
    func heavyHitters() {
        var table = FrequencyTable(capacity: 10)
        var truth: [String: Int64] = [:]
        for i in 0..<10_000 {
            let value = i % 4 == 0 ? "hot" : (i % 10 == 1 ? "warm" : "cold\(i)")
            table.add(value)
            truth[value, default: 0] += 1
        }
        for heavy in ["hot", "warm"] {
            let kept = table.counts[heavy] ?? 0
            #expect(kept <= truth[heavy]! && truth[heavy]! - kept <= table.error)
        }
        #expect(table.error <= table.total / Int64(table.capacity))
    }

    @Test("adding a value n times at once is adding it n times in a row, in a full table too")
    func weightedAdds() {
        var one = FrequencyTable(capacity: 5)
        var batched = FrequencyTable(capacity: 5)
        var state: UInt64 = 3
        for _ in 0..<2_000 {
            state = state &* 6364136223846793005 &+ 1442695040888963407
            let value = "v\(state >> 60)"
            let n = Int64(state >> 58 & 3) + 1
            for _ in 0..<n { one.add(value) }
            batched.add(value, count: n)
        }
        #expect(batched.counts == one.counts && batched.total == one.total && batched.error == one.error)
        #expect(one.error > 0, "the table filled up")
    }
}
