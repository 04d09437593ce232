internal import CYAML

/// Reads YAML (params.yaml, config.yaml, DVC files) into a `JSONValue` with the YAML 1.2 core schema.
/// Bounded for hostile input: nesting deeper than `maximumDepth` and alias expansion beyond `maximumNodes`
/// are errors, so an alias bomb or a 100k-deep document fails in bounded time and memory.
public enum YAMLReader {
    /// Deepest nesting accepted.
    public static let maximumDepth = 256
    /// Most values a document may expand to, counting every alias's copy.
    public static let maximumNodes = 1_000_000

    private enum Frame {
        case sequence(items: [JSONValue], anchor: String?, size: Int)
        case mapping(members: [String: JSONValue], key: String?, anchor: String?, size: Int, merged: Set<String>)
    }

    /// Parses the first document of `bytes`; an empty document is `null`. `source` names the input in errors.
    public static func parse(_ bytes: [UInt8], source: String) throws -> JSONValue {
        var parser = yaml_parser_t()
        guard yaml_parser_initialize(&parser) == 1 else {
            throw InputError.unreadable(source: source, detail: "libyaml could not start")
        }
        defer { yaml_parser_delete(&parser) }
        return try bytes.withUnsafeBufferPointer { buffer in
            yaml_parser_set_input_string(&parser, buffer.baseAddress, buffer.count)
            return try readDocument(&parser, source: source)
        }
    }

    private static func readDocument(_ parser: inout yaml_parser_t, source: String) throws -> JSONValue {
        var stack: [Frame] = []
        var anchors: [String: (value: JSONValue, size: Int)] = [:]
        var nodes = 0
        var result: JSONValue?
        // The line of the event being placed, for error messages.
        var line = 0

        func fail(_ detail: String) -> InputError {
            .malformed(source: source, detail: detail)
        }
        func place(_ value: JSONValue, size: Int) throws {
            nodes += size
            if nodes > maximumNodes { throw InputError.tooLarge(source: source, limit: maximumNodes) }
            guard var top = stack.popLast() else { result = value; return }
            switch top {
            case .sequence(var items, let anchor, let total):
                // Drop `top`'s reference first, so the append grows the array in place (not a copy per item).
                top = .sequence(items: [], anchor: nil, size: 0)
                items.append(value)
                stack.append(.sequence(items: items, anchor: anchor, size: total + size))
            case .mapping(var members, let key, let anchor, let total, var merged):
                top = .sequence(items: [], anchor: nil, size: 0)
                if let key {
                    if key == "<<", case .object(let defaults) = value {
                        // A merge key supplies defaults; the mapping's own keys win, as YAML says.
                        for (name, item) in defaults where members[name] == nil {
                            members[name] = item
                            merged.insert(name)
                        }
                    } else if members.updateValue(value, forKey: key) != nil, merged.remove(key) == nil {
                        throw fail("duplicate key \"\(key.prefix(80))\" at line \(line + 1)")
                    }
                    stack.append(
                        .mapping(members: members, key: nil, anchor: anchor, size: total + size, merged: merged))
                } else {
                    guard let keyText = scalarKey(value) else { throw fail("a mapping key must be a scalar") }
                    nodes -= size
                    stack.append(
                        .mapping(members: members, key: keyText, anchor: anchor, size: total, merged: merged))
                }
            }
        }

        while result == nil {
            var event = yaml_event_t()
            guard yaml_parser_parse(&parser, &event) == 1 else {
                let problem = parser.problem.map { String(cString: $0) } ?? "unknown error"
                throw fail("invalid YAML at line \(parser.problem_mark.line + 1): \(problem)")
            }
            defer { yaml_event_delete(&event) }
            line = Int(event.start_mark.line)
            switch event.type {
            case YAML_STREAM_END_EVENT:
                return .null
            case YAML_SCALAR_EVENT:
                let scalar = event.data.scalar
                let text = string(scalar.value, count: scalar.length)
                let tag = scalar.tag.map { String(cString: $0) }
                let value =
                    (scalar.style == YAML_PLAIN_SCALAR_STYLE && tag == nil) ? resolvePlain(text) : .string(text)
                if let anchor = scalar.anchor { anchors[String(cString: anchor)] = (value, 1) }
                try place(value, size: 1)
            case YAML_ALIAS_EVENT:
                let name = String(cString: event.data.alias.anchor)
                guard let target = anchors[name] else { throw fail("unknown alias *\(name)") }
                try place(target.value, size: target.size)
            case YAML_SEQUENCE_START_EVENT:
                guard stack.count < maximumDepth else { throw InputError.tooDeep(source: source, limit: maximumDepth) }
                let anchor = event.data.sequence_start.anchor.map { String(cString: $0) }
                stack.append(.sequence(items: [], anchor: anchor, size: 1))
            case YAML_MAPPING_START_EVENT:
                guard stack.count < maximumDepth else { throw InputError.tooDeep(source: source, limit: maximumDepth) }
                let anchor = event.data.mapping_start.anchor.map { String(cString: $0) }
                stack.append(.mapping(members: [:], key: nil, anchor: anchor, size: 1, merged: []))
            case YAML_SEQUENCE_END_EVENT, YAML_MAPPING_END_EVENT:
                guard let frame = stack.popLast() else { throw fail("unbalanced collection") }
                let (value, anchor, size): (JSONValue, String?, Int)
                switch frame {
                case .sequence(let items, let a, let s): (value, anchor, size) = (.array(items), a, s)
                case .mapping(let members, _, let a, let s, _): (value, anchor, size) = (.object(members), a, s)
                }
                if let anchor { anchors[anchor] = (value, size) }
                nodes -= size - 1
                try place(value, size: size)
            default:
                continue
            }
        }
        return result ?? .null
    }

    private static func string(_ pointer: UnsafeMutablePointer<yaml_char_t>?, count: Int) -> String {
        guard let pointer else { return "" }
        return String(decoding: UnsafeBufferPointer(start: pointer, count: count), as: UTF8.self)
    }

    private static func scalarKey(_ value: JSONValue) -> String? {
        switch value {
        case .string(let s): return s
        case .null: return "null"
        case .array, .object: return nil
        default: return value.description
        }
    }

    /// The YAML 1.2 core schema for plain scalars: null, booleans, integers, floats, else a string.
    static func resolvePlain(_ text: String) -> JSONValue {
        switch text {
        case "", "~", "null", "Null", "NULL": return .null
        case "true", "True", "TRUE": return .bool(true)
        case "false", "False", "FALSE": return .bool(false)
        case ".inf", ".Inf", ".INF", "+.inf", "+.Inf", "+.INF": return .double(.infinity)
        case "-.inf", "-.Inf", "-.INF": return .double(-.infinity)
        case ".nan", ".NaN", ".NAN": return .double(.nan)
        default: break
        }
        if text.hasPrefix("0x"), let i = Int64(text.dropFirst(2), radix: 16) { return .int(i) }
        if text.hasPrefix("0o"), let i = Int64(text.dropFirst(2), radix: 8) { return .int(i) }
        let body = text.first == "-" || text.first == "+" ? text.dropFirst() : Substring(text)
        guard let first = body.first, first.isASCII, first.isNumber || first == "." else { return .string(text) }
        guard body.allSatisfy({ $0.isASCII && ($0.isNumber || "._eE+-".contains($0)) }) else { return .string(text) }
        if body.allSatisfy({ $0.isNumber }), let i = Int64(text) { return .int(i) }
        if let d = Double(text), body.contains(where: { $0.isNumber }) { return .double(d) }
        return .string(text)
    }
}
