import GitMLBasics

/// Whether two answers say the same thing: exactly, within a numeric tolerance, or (for text) similar enough.
public enum Agreement {
    /// Equal JSON values, numbers within `tolerance` (absolute, or relative to the larger magnitude).
    public static func agree(_ a: JSONValue, _ b: JSONValue, tolerance: Double) -> Bool {
        switch (a, b) {
        case (.array(let x), .array(let y)):
            return x.count == y.count && zip(x, y).allSatisfy { agree($0, $1, tolerance: tolerance) }
        case (.object(let x), .object(let y)):
            return x.count == y.count
                && x.allSatisfy { key, value in y[key].map { agree(value, $0, tolerance: tolerance) } ?? false }
        default:
            if let x = a.number, let y = b.number {
                let difference = abs(x - y)
                return difference <= tolerance || difference <= tolerance * max(abs(x), abs(y))
            }
            return a == b
        }
    }

    /// Two response bodies: compared as JSON when both parse (their `predictions` or `outputs` when both have
    /// them, so a different model name or id in the envelope does not count), else byte for byte.
    public static func agree(_ a: [UInt8], _ b: [UInt8], tolerance: Double) -> Bool {
        guard let x = try? JSONParser.parse(a, source: "an answer"),
            let y = try? JSONParser.parse(b, source: "an answer")
        else { return a == b }
        for field in ["predictions", "outputs"] {
            if let left = x[field], let right = y[field] { return agree(left, right, tolerance: tolerance) }
        }
        return agree(x, y, tolerance: tolerance)
    }

    /// 1 minus the edit distance over the longer length, on Unicode scalars (each text cut to 4,096 of them).
    public static func similarity(_ a: String, _ b: String) -> Double {
        let x = Array(a.unicodeScalars.prefix(4096))
        let y = Array(b.unicodeScalars.prefix(4096))
        let longest = max(x.count, y.count)
        guard longest > 0 else { return 1 }
        var previous = Array(0...y.count)
        var current = [Int](repeating: 0, count: y.count + 1)
        for i in 1...max(1, x.count) where !x.isEmpty {
            current[0] = i
            for j in stride(from: 1, through: y.count, by: 1) {
                let cost = x[i - 1] == y[j - 1] ? 0 : 1
                current[j] = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + cost)
            }
            swap(&previous, &current)
        }
        let distance = x.isEmpty ? y.count : previous[y.count]
        return 1 - Double(distance) / Double(longest)
    }

    /// The text of an answer: a JSON string, an OpenAI chat or completion answer's first choice, or the body.
    public static func text(of value: JSONValue) -> String? {
        if let text = value.string { return text }
        if let choice = value["choices"]?.array?.first {
            return choice["message"]?["content"]?.string ?? choice["text"]?.string
        }
        return nil
    }
}

/// One line of a golden file: a recorded request, the answer it got, and how a new answer is compared with it.
public struct GoldenProbe: Sendable {
    public enum Comparison: Sendable, Equatable {
        case exact
        case numeric(tolerance: Double)
        case text(similarity: Double)
    }

    public let line: Int
    public let name: String
    /// The route for a version (`/v1/models/<model>:predict` unless the line names one); ignored with `--url`.
    public let path: String?
    public let request: JSONValue
    public let response: JSONValue
    public let comparison: Comparison

    /// Reads JSON lines: `{"request": ..., "response": ..., "compare": "exact"|"numeric"|"text", "tolerance": t,
    /// "similarity": s, "path": "/...", "name": "..."}`. Blank lines and lines starting with `#` are skipped.
    public static func parse(_ bytes: [UInt8], source: String) throws -> [GoldenProbe] {
        var probes: [GoldenProbe] = []
        var number = 0
        for raw in bytes.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false) {
            number += 1
            let line = Array(raw.drop { $0 == 0x20 || $0 == 0x09 })
            if line.isEmpty || line.first == UInt8(ascii: "#") || line == [0x0D] { continue }
            let at = "\(source) line \(number)"
            let value = try JSONParser.parse(line, source: at)
            let reader = KeyReader(source: at)
            let members = try reader.mapping(value, "the line")
            try reader.only(
                members, ["name", "path", "request", "response", "compare", "tolerance", "similarity"], at: "")
            guard let request = members["request"], let response = members["response"] else {
                throw reader.bad("a probe needs request and response")
            }
            for key in ["name", "path", "compare"] where members[key] != nil && members[key]?.string == nil {
                throw reader.bad("\(key) must be text")
            }
            let path = members["path"]?.string
            if let path, !(path.hasPrefix("/") && path.utf8.allSatisfy({ $0 > 0x20 && $0 < 0x7F }) && path.count < 1024)
            {
                throw reader.bad("path must be a route such as /v1/models/churn:predict")
            }
            let comparison: Comparison
            switch members["compare"]?.string ?? "exact" {
            case "exact": comparison = .exact
            case "numeric":
                comparison = .numeric(tolerance: try reader.number(members["tolerance"], "tolerance", 0...1e12) ?? 1e-6)
            case "text":
                guard let threshold = try reader.number(members["similarity"], "similarity", 0...1) else {
                    throw reader.bad("compare: text needs similarity, a threshold from 0 to 1")
                }
                comparison = .text(similarity: threshold)
            default: throw reader.bad("compare must be exact, numeric or text")
            }
            probes.append(
                GoldenProbe(
                    line: number, name: members["name"]?.string ?? "line \(number)", path: path, request: request,
                    response: response, comparison: comparison))
            if probes.count > 100_000 { throw reader.bad("at most 100,000 probes") }
        }
        guard !probes.isEmpty else {
            throw InputError.malformed(source: source, detail: "no probes: write one JSON object per line")
        }
        return probes
    }

    /// Whether `answer` (a body) matches the recorded response, and what was compared.
    public func check(_ answer: [UInt8]) -> (passed: Bool, detail: String) {
        let parsed = try? JSONParser.parse(answer, source: "the answer")
        switch comparison {
        case .exact:
            guard let parsed else { return (false, "the answer is not JSON") }
            // Exact, but 203 and 203.0 are the same number.
            return Agreement.agree(parsed, response, tolerance: 0) ? (true, "equal") : (false, "differs")
        case .numeric(let tolerance):
            guard let parsed else { return (false, "the answer is not JSON") }
            let passed =
                Agreement.agree(
                    Array(JSONWriter.compact(response).utf8), Array(JSONWriter.compact(parsed).utf8),
                    tolerance: tolerance)
            return (
                passed, passed ? "within \(JSONWriter.format(tolerance))" : "beyond \(JSONWriter.format(tolerance))"
            )
        case .text(let threshold):
            guard let expected = Agreement.text(of: response) else {
                return (false, "the recorded response has no text")
            }
            guard let got = parsed.flatMap(Agreement.text(of:)) ?? String(validating: answer, as: UTF8.self) else {
                return (false, "the answer has no text")
            }
            let score = Agreement.similarity(expected, got)
            let shown = JSONWriter.format((score * 1000).rounded() / 1000)
            return (score >= threshold, "similarity \(shown) (needs \(JSONWriter.format(threshold)))")
        }
    }
}
