import GitMLBasics
import GitMLStore

/// A run record read from `.mlops/runs/<id>.json`, its integrity checked.
public struct StoredRun: Sendable {
    /// The SHA-256 of the record's bytes, which is also its file name.
    public let id: String
    /// The record.
    public let record: JSONValue
    /// The bytes as they are on disk.
    public let bytes: [UInt8]

    public var created: String { record["created"]?.string ?? "" }
    public var kind: String { record["kind"]?.string ?? "" }
    public var status: String { record["status"]?.string ?? "" }
    public var metrics: [String: JSONValue] { record["metrics"]?.object ?? [:] }
    public var params: [String: JSONValue] { record["params"]?.object ?? [:] }
    public var data: [JSONValue] { record["data"]?.array ?? [] }
    public var artifacts: [JSONValue] { record["artifacts"]?.array ?? [] }
}

/// Finding and reading run records.
public struct RunStore {
    let workspace: Workspace

    public init(workspace: Workspace) {
        self.workspace = workspace
    }

    /// Every record id present (file names that are digests), sorted.
    public func ids() -> [String] {
        ((try? workspace.files.list(".mlops/runs")) ?? []).compactMap { name -> String? in
            guard name.hasSuffix(".json") else { return nil }
            let id = String(name.dropLast(5))
            return SHA256.isDigest(id) ? id : nil
        }.sorted()
    }

    /// The full id for a prefix of at least 4 hex digits, like git's abbreviated commits.
    public func resolve(_ prefix: String) throws -> String {
        let lower = prefix.lowercased()
        let all = ids()
        guard lower.allSatisfy(\.isHexDigit) else { throw LineageError.runNotFound(prefix: prefix, suggestions: []) }
        guard lower.count >= 4 else { throw LineageError.prefixTooShort(prefix) }
        let matches = all.filter { $0.hasPrefix(lower) }
        if matches.count == 1 { return matches[0] }
        if matches.count > 1 {
            throw LineageError.ambiguousRun(prefix: prefix, candidates: matches.map { String($0.prefix(12)) })
        }
        // Suggest the ids sharing the longest prefix, as git does for a mistyped name.
        let best = all.map { id in (id, zip(id, lower).prefix(while: { $0 == $1 }).count) }
        let longest = best.map(\.1).max() ?? 0
        let suggestions =
            longest >= 2 ? best.filter { $0.1 == longest }.prefix(3).map { String($0.0.prefix(lower.count + 1)) } : []
        throw LineageError.runNotFound(prefix: prefix, suggestions: suggestions)
    }

    /// The most recently created record's id.
    public func latest() throws -> String {
        guard let newest = try RunIndex(workspace: workspace).newest() else { throw LineageError.noRuns }
        return newest
    }

    /// Reads a record and checks that its bytes still hash to its name and that it parses.
    public func read(_ id: String) throws -> StoredRun {
        guard SHA256.isDigest(id) else { throw LineageError.runNotFound(prefix: id, suggestions: []) }
        return try StoredRun(id: id, bytes: try workspace.files.read(".mlops/runs/\(id).json"))
    }
}

extension StoredRun {
    /// A record from its bytes (read from the work tree or from a commit): its name must be its digest and its
    /// shape the schema's.
    public init(id: String, bytes: [UInt8]) throws { try self.init(id: id, bytes: bytes, skipping: []) }

    /// A record whose top-level `skipping` members are stepped over (read as empty) after its digest is checked.
    init(id: String, bytes: [UInt8], skipping: Set<String>) throws {
        let file = ".mlops/runs/\(id).json"
        let actual = try SHA256.hex(of: bytes)
        guard actual == id else {
            throw LineageError.invalidRecord(
                file: file,
                detail: "content does not match its name (its sha256 is \(actual.prefix(12))): the record was modified")
        }
        let record = try JSONParser.parse(bytes, source: file, skipping: skipping)
        try RecordSchema.validate(record, file: file)
        self.init(id: id, record: record, bytes: bytes)
    }
}
