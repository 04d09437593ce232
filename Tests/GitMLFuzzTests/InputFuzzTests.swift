import Foundation
import GitMLBasics
import Testing

@testable import GitMLDrift
@testable import GitMLGates
@testable import GitMLLineage
@testable import GitMLRegistry

/// A small seeded generator (SplitMix64), so a failing case is reproduced by its seed.
struct SplitMix: RandomNumberGenerator {
    var state: UInt64
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

/// Mutations of a valid input, the kinds a hostile or broken file has.
enum Mutation {
    static let numbers = [
        "1e300", "-1e300", "1e309", "-1", "0", "1.5", "9223372036854775807", "9223372036854775808",
        "0x7fffffffffffffff", "NaN", "-Infinity", ".inf", "99999999999999999999999999",
    ]
    static let tokens = ["\u{0}", "\u{FFFF}", "&a [1]", "*a", "!!python/object:os.system", "<<: *a", "\"\\ud800\""]

    static func apply(_ input: [UInt8], _ random: inout SplitMix) -> [UInt8] {
        var bytes = input
        let count = Int.random(in: 1...3, using: &random)
        for _ in 0..<count { bytes = once(bytes, &random) }
        return bytes
    }

    private static func once(_ input: [UInt8], _ random: inout SplitMix) -> [UInt8] {
        var bytes = input
        let at = bytes.isEmpty ? 0 : Int.random(in: 0..<bytes.count, using: &random)
        switch Int.random(in: 0..<9, using: &random) {
        case 0:
            if !bytes.isEmpty { bytes[at] ^= UInt8(1 << Int.random(in: 0..<8, using: &random)) }
        case 1: bytes = Array(bytes.prefix(at))
        case 2:
            // Replace a run of digits with a hostile number.
            if let start = bytes[at...].firstIndex(where: { (0x30...0x39).contains($0) }) {
                var end = start
                while end < bytes.count, (0x30...0x39).contains(bytes[end]) || bytes[end] == 0x2E { end += 1 }
                bytes.replaceSubrange(
                    start..<end, with: Array(numbers[Int.random(in: 0..<numbers.count, using: &random)].utf8))
            }
        case 3:
            let depth = Int.random(in: 100...400, using: &random)
            let open = Array(repeating: UInt8(ascii: "["), count: depth)
            let close = Array(repeating: UInt8(ascii: "]"), count: depth)
            bytes.insert(contentsOf: open + Array("1".utf8) + close, at: at)
        case 4: bytes.insert(contentsOf: [0x00, 0xFF, 0xFE, 0xC0, 0x80], at: at)
        case 5:
            // Duplicate a line (a key given twice).
            let lines = bytes.split(separator: 0x0A, omittingEmptySubsequences: false).map(Array.init)
            guard !lines.isEmpty else { break }
            var copy = lines
            let i = Int.random(in: 0..<lines.count, using: &random)
            copy.insert(lines[i], at: i)
            bytes = Array(copy.joined(separator: [0x0A]))
        case 6: bytes.insert(contentsOf: Array(tokens[Int.random(in: 0..<tokens.count, using: &random)].utf8), at: at)
        case 7:
            if !bytes.isEmpty {
                let length = Int.random(in: 1...min(64, bytes.count - at), using: &random)
                bytes.removeSubrange(at..<(at + length))
            }
        default:
            if !bytes.isEmpty {
                let length = Int.random(in: 1...min(256, bytes.count - at), using: &random)
                bytes.insert(contentsOf: bytes[at..<(at + length)], at: at)
            }
        }
        return bytes
    }
}

/// Each input kind: a valid example and what git-ml does with such a file.
struct InputKind: Sendable, CustomStringConvertible {
    let name: String
    let valid: [UInt8]
    let consume: @Sendable ([UInt8]) throws -> Void
    var description: String { name }

    init(name: String, valid: String, consume: @escaping @Sendable ([UInt8]) throws -> Void) {
        self.init(name: name, bytes: Array(valid.utf8), consume: consume)
    }

    init(name: String, bytes: [UInt8], consume: @escaping @Sendable ([UInt8]) throws -> Void) {
        self.name = name
        self.valid = bytes
        self.consume = consume
    }
}

/// A sketch of 1,000 values with k = 8 (so it has many levels), as DataSketches' bytes.
private let sketchBytes: [UInt8] = {
    var sketch = QuantileSketch(k: 8)
    for i in 0..<1000 { sketch.add(Double((i * 7919) % 1000) / 10) }
    return sketch.datasketchesBytes
}()

/// A stored profile (schema 2) of a small table with a numeric and a categorical column.
private let profileText: String = {
    var numbers = ColumnProfile(name: "age", type: "numeric")
    var categories = ColumnProfile(name: "country", type: "categorical")
    for i in 0..<500 {
        numbers.count += 1
        numbers.addNumber(Double(i % 97))
        categories.count += 1
        categories.frequencies.add(["DE", "FR", "US"][i % 3])
    }
    let profile = Profile(name: "t", source: "t.csv", rows: 500, target: nil, columns: [numbers, categories])
    return String(decoding: profile.bytes, as: UTF8.self)
}()

private let sha = String(repeating: "a", count: 64)

private func viaFile(_ bytes: [UInt8], suffix: String, _ body: (String) throws -> Void) throws {
    let path = FileManager.default.temporaryDirectory.appendingPathComponent("fuzz-\(UUID().uuidString)\(suffix)").path
    try Data(bytes).write(to: URL(fileURLWithPath: path))
    defer { try? FileManager.default.removeItem(atPath: path) }
    try body(path)
}

let kinds: [InputKind] = [
    InputKind(
        name: "record",
        valid: """
            {"schema_version": 1, "kind": "run", "status": "succeeded", "created": "2026-12-01T00:00:00.000000Z",
             "git": {"dirty": false, "patch": null, "commit": "abc"}, "data": [{"path": "data/a.csv", "sha256": "\(sha)",
             "size": 10, "files": 1}], "artifacts": [{"path": "model.pkl", "sha256": "\(sha)", "size": 7}],
             "params": {"lr": 0.01}, "metrics": {"acc": 0.93}, "environment": {}, "parents": [],
             "seed": {"value": 42, "source": "cli"}, "command": {"argv": ["python3", "train.py"], "cwd": "",
             "exit_status": 0}}
            """,
        consume: { bytes in
            let value = try JSONParser.parse(bytes, source: "record")
            try RecordSchema.validate(value, file: "record")
            _ = value.flattened()
        }),
    InputKind(
        name: "version",
        valid: """
            {"schema_version": 1, "model": "churn", "version": 3, "run": "\(sha)", "created": "2026-12-01T00:00:00Z",
             "artifacts": [{"path": "model.pkl", "sha256": "\(sha)", "size": 7}], "owner": {"email": "a@x"}}
            """,
        consume: { bytes in _ = try ModelVersion(bytes: bytes, file: "v.json") }),
    InputKind(
        name: "event",
        valid: """
            {"schema_version": 1, "model": "churn", "version": 1, "kind": "rollback", "to": "production",
             "rolled_back": 2, "time": "2026-12-01T00:00:00.000000Z", "actor": {"email": "a@x"},
             "version_digest": "\(sha)", "artifacts": [{"path": "m", "sha256": "\(sha)"}]}
            """,
        consume: { bytes in
            let event = try RegistryEvent(id: "e", bytes: bytes, file: "e.json")
            let version = try ModelVersion(
                bytes: Array(
                    "{\"model\":\"churn\",\"version\":1,\"run\":\"r\",\"artifacts\":[],\"created\":\"2020-01-01T00:00:00Z\"}"
                        .utf8), file: "v")
            let state = ModelState(name: "churn", versions: [version], events: [event], now: 1.8e9)
            _ = state.rollbackTarget()
            _ = event.summary
        }),
    InputKind(
        name: "gates",
        valid: """
            version: 1
            staging:
              - ungated: true
            production:
              - metric: f1@country=DE
                min: 0.8
                min_samples: 100
              - regression: loss
                max_drop_pct: 5
                direction: lower
              - approvals: 2
                distinct_from_owner: true
              - card: required
                sections: [Intended use]
            """,
        consume: { bytes in
            let spec = try GateSpec.parse(bytes, digest: "d")
            for stage in [Stage.staging, .production] {
                guard let checks = try? spec.checks(for: stage) else { continue }
                var inputs = GateInputs(candidate: .object(["metrics": .object(["f1@country=DE": .double(0.9)])]))
                inputs.champion = .object(["metrics": .object(["loss": .double(0.1)])])
                _ = GateEvaluation.evaluate(checks, inputs)
            }
        }),
    InputKind(
        name: "config",
        valid: """
            version: 1
            data: [data/]
            environment:
              variables: [CUDA_VISIBLE_DEVICES]
              python: python3
            approvers: [alice@example.com]
            drift: {psi: 0.2, p_value: 0.05}
            """,
        consume: { bytes in _ = try Config.parse(bytes) }),
    InputKind(
        name: "params",
        valid: "train:\n  lr: 0.01\n  epochs: 10\nmodel: &m {depth: 3}\nother: *m\n",
        consume: { bytes in
            try viaFile(bytes, suffix: ".yaml") { _ = try Measurements.readStructured($0, displayName: "params.yaml") }
        }),
    InputKind(
        name: "metrics-json",
        valid: "{\"acc\": 0.93, \"eval\": {\"f1\": 0.8, \"loss\": NaN}, \"n\": 1000}",
        consume: { bytes in
            try viaFile(bytes, suffix: ".json") { _ = try Measurements.metrics(fromFile: $0, displayName: "m.json") }
        }),
    InputKind(
        name: "metrics-yaml",
        valid: "acc: 0.93\neval:\n  f1: 0.8\n  loss: .nan\nn: 1000\n",
        consume: { bytes in
            try viaFile(bytes, suffix: ".yaml") { _ = try Measurements.metrics(fromFile: $0, displayName: "m.yaml") }
        }),
    InputKind(
        name: "jsonl",
        valid: "{\"step\": 1, \"loss\": 0.5}\n{\"step\": 2, \"loss\": 0.4, \"acc\": 0.9}\n",
        consume: { bytes in
            try viaFile(bytes, suffix: ".jsonl") { path in
                _ = try Measurements.childMetrics(path)
                let profile = try ProfileBuilder.build(path: path, source: "t.jsonl", name: "t")
                _ = ProfileSummary(profile)
            }
        }),
    InputKind(
        name: "kll-bytes", bytes: sketchBytes,
        consume: { bytes in
            var sketch = try QuantileSketch(datasketches: bytes)
            sketch.merge(sketch)
            _ = sketch.quantile(0.5)
            // Whatever was read, merged and compacted, git-ml reads its own bytes back.
            let written = sketch.datasketchesBytes
            #expect((try? QuantileSketch(datasketches: written))?.datasketchesBytes == written)
        }),
    InputKind(
        name: "profile-json", valid: profileText,
        consume: { bytes in
            let profile = try Profile(json: try JSONParser.parse(bytes, source: "p.json"), source: "p.json")
            let merged = try Profile.merged([profile, profile], name: "m", source: "m")
            let again = try Profile(json: try JSONParser.parse(merged.bytes, source: "m.json"), source: "m.json")
            _ = DriftDetector.compare(
                reference: ProfileSummary(profile), current: ProfileSummary(again), thresholds: DriftThresholds(),
                columns: [])
        }),
    InputKind(
        name: "csv",
        valid: "age,country,income\n34,DE,52000.5\n41,FR,61000\n29,\"U,S\",48000\n,DE,\n",
        consume: { bytes in
            try viaFile(bytes, suffix: ".csv") { path in
                let profile = try ProfileBuilder.build(path: path, source: "t.csv", name: "t")
                let summary = ProfileSummary(profile)
                _ = DriftDetector.compare(
                    reference: summary, current: summary, thresholds: DriftThresholds(), columns: [])
            }
        }),
]

/// Every mutated input ends in success or in git-ml's own error (`GitMLError`: one line, a hint, a code): never a
/// trap (which would end this process), a hang, or a foreign error. Cases per kind: GIT_ML_FUZZ_CASES (2,000).
@Suite("Hostile input: mutated files of every kind")
struct InputFuzzTests {
    static let cases = Int(ProcessInfo.processInfo.environment["GIT_ML_FUZZ_CASES"] ?? "") ?? 2000
    static let seed = UInt64(ProcessInfo.processInfo.environment["GIT_ML_FUZZ_SEED"] ?? "") ?? 0x6769_742D_6D6C

    @Test("mutations end in success or a one-line error", .timeLimit(.minutes(10)), arguments: kinds)
    func mutations(_ kind: InputKind) throws {
        try kind.consume(kind.valid)
        var random = SplitMix(state: kind.name.utf8.reduce(Self.seed) { $0 &* 31 &+ UInt64($1) })
        for number in 0..<Self.cases {
            let input = Mutation.apply(kind.valid, &random)
            do {
                try kind.consume(input)
            } catch let error as GitMLError {
                #expect(!error.message.isEmpty && !error.message.contains("\n"), "\(kind) case \(number)")
            } catch {
                Issue.record("\(kind) case \(number) (seed \(Self.seed)): not git-ml's error: \(error)")
            }
        }
    }

    @Test("every input that once failed still ends in success or a one-line error")
    func keptFixtures() throws {
        let directory = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Fixtures")
        let names = (try? FileManager.default.contentsOfDirectory(atPath: directory.path)) ?? []
        for name in names where name.hasSuffix(".bin") {
            guard let kind = kinds.first(where: { name.hasPrefix($0.name + "-") }) else {
                Issue.record("\(name) names no input kind")
                continue
            }
            let bytes = Array(try Data(contentsOf: directory.appendingPathComponent(name)))
            do { try kind.consume(bytes) } catch is GitMLError {}
        }
    }
}
