import GitMLBasics

/// One compared value of `git ml diff`.
public struct DiffRow: Sendable {
    /// "params", "metrics", "seed", "data", "artifacts", "git", "environment", "packages".
    public var section: String
    public var key: String
    public var a: JSONValue?
    public var b: JSONValue?
    /// b - a, for numbers.
    public var delta: Double? {
        guard let x = a?.number, let y = b?.number else { return nil }
        return y - x
    }
    public var changed: Bool { a != b }

    public var json: JSONValue {
        .object([
            "section": .string(section), "key": .string(key), "a": a ?? .null, "b": b ?? .null,
            "changed": .bool(changed), "delta": delta.map(JSONValue.double) ?? .null,
        ])
    }
}

/// Two runs side by side: every param, metric and seed; data and artifacts by digest; the git state;
/// the environment and Python packages where they differ.
public enum RunDiff {
    public static func compare(_ a: StoredRun, _ b: StoredRun) -> [DiffRow] {
        var rows: [DiffRow] = []
        func all(_ section: String, _ x: [String: JSONValue], _ y: [String: JSONValue], onlyChanged: Bool = false) {
            for key in Set(x.keys).union(y.keys).sorted() where !onlyChanged || x[key] != y[key] {
                rows.append(DiffRow(section: section, key: key, a: x[key], b: y[key]))
            }
        }
        all("params", a.params, b.params)
        all("metrics", a.metrics, b.metrics)
        all("seed", ["seed": a.record["seed"]?["value"] ?? .null], ["seed": b.record["seed"]?["value"] ?? .null])
        func byPath(_ items: [JSONValue]) -> [String: JSONValue] {
            Dictionary(
                items.compactMap { item in item["path"]?.string.map { ($0, item["sha256"] ?? .string("missing")) } },
                uniquingKeysWith: { x, _ in x })
        }
        all("data", byPath(a.data), byPath(b.data))
        all("artifacts", byPath(a.artifacts), byPath(b.artifacts))
        all(
            "git", (a.record["git"] ?? .null).flattened().filter { !$0.key.hasPrefix("changed_paths") },
            (b.record["git"] ?? .null).flattened().filter { !$0.key.hasPrefix("changed_paths") })
        func environment(_ run: StoredRun) -> [String: JSONValue] {
            (run.record["environment"] ?? .null).flattened().filter { !$0.key.hasPrefix("python.packages") }
        }
        all("environment", environment(a), environment(b), onlyChanged: true)
        all(
            "packages", a.record["environment"]?["python"]?["packages"]?.object ?? [:],
            b.record["environment"]?["python"]?["packages"]?.object ?? [:], onlyChanged: true)
        return rows
    }
}
