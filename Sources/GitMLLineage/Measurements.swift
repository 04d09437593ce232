import GitMLBasics
import GitMLStore

/// Params and metrics read from the command line and from files, DVC and MLflow style:
/// nested keys are flattened to dotted names (`{"eval": {"acc": 0.9}}` -> `eval.acc`).
public enum Measurements {
    /// Largest params or metrics file read.
    static let fileLimit = 64 << 20

    /// `key=value` from `--param` or `--metric`.
    /// Splits NAME=VALUE at the first "=" (a param's value may hold "="), or at the last one (a metric's value is a
    /// number, and a slice metric's name holds "=": f1@country=DE=0.8).
    static func pair(_ text: String, flag: String, atLast: Bool = false) throws -> (String, String) {
        guard let eq = atLast ? text.lastIndex(of: "=") : text.firstIndex(of: "="), eq != text.startIndex else {
            throw LineageError.badArgument("\(flag) \(text): expected NAME=VALUE", hint: "for example \(flag) lr=0.01")
        }
        return (String(text[..<eq]), String(text[text.index(after: eq)...]))
    }

    /// `--metric name=value`: the value must be a number.
    public static func metric(_ text: String) throws -> (String, JSONValue) {
        let (name, value) = try pair(text, flag: "--metric", atLast: true)
        switch value {
        case "nan", "NaN": return (name, .double(.nan))
        case "inf", "Infinity": return (name, .double(.infinity))
        case "-inf", "-Infinity": return (name, .double(-.infinity))
        default: break
        }
        guard let number = Double(value) else {
            throw LineageError.badArgument(
                "--metric \(text): \(value) is not a number", hint: "metrics are numbers; record text as a --param")
        }
        return (name, Int64(value).map(JSONValue.int) ?? .double(number))
    }

    /// `--param name=value`: numbers and booleans are typed, anything else kept as text.
    public static func param(_ text: String) throws -> (String, JSONValue) {
        let (name, value) = try pair(text, flag: "--param")
        return (name, JSONValue.inferred(from: value))
    }

    /// A JSON or YAML file as a value (JSON for `.json`, YAML otherwise, as DVC reads them).
    static func readStructured(_ path: String, displayName: String) throws -> JSONValue {
        let bytes: [UInt8]
        do { bytes = try AtomicFile.read(path, limit: fileLimit) } catch let error as StoreError {
            throw InputError.unreadable(source: displayName, detail: error.message)
        }
        return try parseStructured(bytes, json: path.hasSuffix(".json"), displayName: displayName)
    }

    /// JSON or YAML bytes as a value.
    static func parseStructured(_ bytes: [UInt8], json: Bool, displayName: String) throws -> JSONValue {
        json ? try JSONParser.parse(bytes, source: displayName) : try YAMLReader.parse(bytes, source: displayName)
    }

    /// The numeric leaves of a metrics file, flattened. Text values are not metrics and are left out.
    static func metrics(fromFile path: String, displayName: String) throws -> [String: JSONValue] {
        let value = try readStructured(path, displayName: displayName)
        guard case .object = value else {
            throw InputError.malformed(source: displayName, detail: "expected an object of metric names and numbers")
        }
        return value.flattened().filter { $0.value.number != nil || isNonFinite($0.value) }
    }

    static func isNonFinite(_ value: JSONValue) -> Bool {
        if case .double(let d) = value { return !d.isFinite }
        return false
    }

    /// The file a child writes at `$GIT_ML_METRICS`: one JSON object, or JSON lines of step metrics
    /// (`{"step": 3, "loss": 0.2}`). Returns the final values and, for JSON lines, each metric's steps.
    static func childMetrics(_ path: String) throws -> (final: [String: JSONValue], steps: [String: JSONValue]) {
        let name = "$GIT_ML_METRICS"
        guard FileSystem.exists(path) else { return ([:], [:]) }
        let bytes = try AtomicFile.read(path, limit: fileLimit)
        if let whole = try? JSONParser.parse(bytes, source: name), case .object = whole {
            return (whole.flattened().filter { $0.value.number != nil || isNonFinite($0.value) }, [:])
        }
        var final: [String: JSONValue] = [:]
        var steps: [String: [JSONValue]] = [:]
        var lineNumber = 0
        for line in bytes.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false) {
            lineNumber += 1
            if line.allSatisfy({ $0 == 0x20 || $0 == 0x09 || $0 == 0x0D }) { continue }
            let value = try JSONParser.parse(Array(line), source: "\(name) line \(lineNumber)")
            guard case .object(let members) = value else {
                throw InputError.malformed(source: name, detail: "line \(lineNumber) is not a JSON object")
            }
            let step = members["step"] ?? .int(Int64(lineNumber - 1))
            for (key, metric) in value.flattened() where key != "step" && (metric.number != nil || isNonFinite(metric))
            {
                final[key] = metric
                steps[key, default: []].append(.object(["step": step, "value": metric]))
            }
        }
        return (final, steps.mapValues(JSONValue.array))
    }
}
