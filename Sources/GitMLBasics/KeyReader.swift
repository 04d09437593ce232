/// Typed reads of a parsed YAML mapping, with errors that name the key.
public struct KeyReader {
    public let source: String

    public init(source: String) { self.source = source }

    public func bad(_ detail: String) -> InputError { .malformed(source: source, detail: detail) }

    public func mapping(_ value: JSONValue, _ key: String) throws -> [String: JSONValue] {
        if value == .null { return [:] }
        guard case .object(let members) = value else { throw bad("\(key) must be a mapping") }
        return members
    }

    public func only(_ members: [String: JSONValue], _ known: [String], at prefix: String) throws {
        for key in members.keys.sorted() where !known.contains(key) {
            throw bad("\(prefix)\(key) is not a setting: use \(known.joined(separator: ", "))")
        }
    }

    public func int(_ value: JSONValue?, _ key: String, _ range: ClosedRange<Int>) throws -> Int? {
        guard let value, value != .null else { return nil }
        guard let number = value.int(in: range) else {
            throw bad("\(key) must be a whole number from \(range.lowerBound) to \(range.upperBound)")
        }
        return number
    }

    public func number(_ value: JSONValue?, _ key: String, _ range: ClosedRange<Double>) throws -> Double? {
        guard let value, value != .null else { return nil }
        guard let number = value.number, number.isFinite, range.contains(number) else {
            throw bad(
                "\(key) must be a number from \(NumberText.exact(range.lowerBound)) to \(NumberText.exact(range.upperBound))"
            )
        }
        return number
    }

    public func bool(_ value: JSONValue?, _ key: String) throws -> Bool? {
        guard let value, value != .null else { return nil }
        guard case .bool(let flag) = value else { throw bad("\(key) must be true or false") }
        return flag
    }

    public func strings(_ value: JSONValue?, _ key: String) throws -> [String] {
        guard let value, value != .null else { return [] }
        guard case .array(let items) = value, items.count <= 4096 else { throw bad("\(key) must be a list of strings") }
        return try items.map { item in
            switch item {
            case .string(let text): return text
            case .int(let number): return String(number)
            default: throw bad("\(key) must be a list of strings")
            }
        }
    }
}
