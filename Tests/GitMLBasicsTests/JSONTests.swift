import Testing

@testable import GitMLBasics

@Suite("JSON")
struct JSONTests {
    @Test(
        "values round-trip through the writer and the parser",
        arguments: [
            "{\"a\":1,\"b\":[true,false,null],\"c\":\"x\\ny\\u00e9\",\"d\":-0.25,\"e\":1e-06}",
            "[]", "{}", "\"\\ud83d\\ude00\"", "12345678901234",
        ])
    func roundTrip(_ text: String) throws {
        let value = try JSONParser.parse(text, source: "t")
        #expect(try JSONParser.parse(JSONWriter.pretty(value), source: "t") == value)
    }

    @Test("keys are written sorted, so equal values give equal bytes")
    func sortedKeys() throws {
        let value = try JSONParser.parse("{\"b\":1,\"a\":{\"d\":2,\"c\":3}}", source: "t")
        #expect(JSONWriter.compact(value) == "{\"a\":{\"c\":3,\"d\":2},\"b\":1}")
    }

    @Test("Python's NaN and Infinity are read, and written back as strings")
    func nonFinite() throws {
        let value = try JSONParser.parse("{\"loss\": NaN, \"x\": -Infinity}", source: "t")
        #expect(value["loss"]?.number?.isNaN == true)
        #expect(JSONWriter.compact(value) == "{\"loss\":\"NaN\",\"x\":\"-Infinity\"}")
    }

    @Test(
        "malformed input is an error naming the source and position",
        arguments: [
            "{", "{\"a\" 1}", "[1,]", "01", "\"\u{01}\"", "{\"a\":1} x", "tru", "1.", "-",
        ])
    func malformed(_ text: String) {
        #expect(throws: InputError.self) { try JSONParser.parse(text, source: "metrics.json") }
        do { _ = try JSONParser.parse(text, source: "metrics.json") } catch let error as InputError {
            #expect(error.message.hasPrefix("metrics.json:"))
        } catch { Issue.record("unexpected \(error)") }
    }

    @Test("100,000 levels of nesting fail fast instead of overflowing the stack")
    func deepNesting() {
        let text = String(repeating: "[", count: 100_000) + String(repeating: "]", count: 100_000)
        #expect(throws: InputError.tooDeep(source: "deep.json", limit: JSONParser.maximumDepth)) {
            try JSONParser.parse(text, source: "deep.json")
        }
    }

    @Test("flattening nested objects gives dotted names")
    func flatten() throws {
        let value = try JSONParser.parse("{\"eval\":{\"acc\":0.9,\"f1\":{\"macro\":0.8}},\"n\":3}", source: "t")
        #expect(value.flattened() == ["eval.acc": .double(0.9), "eval.f1.macro": .double(0.8), "n": .int(3)])
    }

    @Test("a duplicate key is an error naming the key, at any depth")
    func duplicateKeys() {
        for text in ["{\"passed\":false,\"passed\":true}", "{\"a\":{\"b\":1,\"b\":2}}"] {
            #expect {
                try JSONParser.parse(text, source: "e.json")
            } throws: { error in
                (error as? InputError)?.message.contains("duplicate key") == true
            }
        }
    }

    @Test(
        "a number becomes an integer only when it is whole, finite and in range",
        arguments: [
            ("1", Int64?(1)), ("1.0", 1), ("1.5", nil), ("1e300", nil), ("-1e300", nil), ("NaN", nil),
            ("9223372036854775807", 9_223_372_036_854_775_807), ("9223372036854775808", nil), ("\"3\"", nil),
        ])
    func integers(_ text: String, _ expected: Int64?) throws {
        #expect(try JSONParser.parse(text, source: "t").integer() == expected)
        #expect(
            try JSONParser.parse(text, source: "t").int(in: 0...10) == expected.flatMap { $0 <= 10 ? Int($0) : nil })
    }
}

extension InputError: Equatable {
    public static func == (a: InputError, b: InputError) -> Bool { a.message == b.message }
}
