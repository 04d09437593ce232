import GitMLBasics
import GitMLLineage
import GitMLStore

/// A stage of a model version's life.
public enum Stage: String, Sendable, CaseIterable {
    case draft, staging, production, archived

    /// The stage a user names (`staging`, `Production`), for promotions: only staging and production.
    public static func target(_ text: String) throws -> Stage {
        switch text.lowercased() {
        case "staging": return .staging
        case "production": return .production
        default: throw RegistryError.badStage(text)
        }
    }

    /// Where a version may go from here (docs/registry.md).
    public func allows(_ next: Stage) -> Bool {
        switch (self, next) {
        case (.draft, .staging), (.draft, .production), (.draft, .archived): return true
        case (.staging, .production), (.staging, .archived): return true
        case (.production, .archived): return true
        case (.archived, .staging), (.archived, .production): return true
        default: return false
        }
    }
}

/// One artifact of a model version, as its run recorded it.
public struct ModelArtifact: Sendable, Equatable {
    public var path: String
    public var sha256: String
    public var size: Int64

    public var json: JSONValue { .object(["path": .string(path), "sha256": .string(sha256), "size": .int(size)]) }

    init(_ value: JSONValue, file: String) throws {
        guard let path = value["path"]?.string, let sha256 = value["sha256"]?.string, SHA256.isDigest(sha256) else {
            throw RegistryError.malformedFile(file: file, detail: "an artifact lacks path or sha256")
        }
        guard let size = (value["size"] ?? .int(0)).integer(in: 0...Int64.max) else {
            throw RegistryError.malformedFile(
                file: file, detail: "artifact \(path): size must be a whole number of bytes")
        }
        self.init(path: path, sha256: sha256, size: size)
    }

    public init(path: String, sha256: String, size: Int64) {
        self.path = path
        self.sha256 = sha256
        self.size = size
    }
}

/// `.mlops/models/<name>/versions/<n>.json`: written once at registration, never edited.
public struct ModelVersion: Sendable {
    public static let schemaVersion: Int64 = 1
    public let model: String
    public let version: Int
    public let run: String
    public let artifacts: [ModelArtifact]
    public let created: String
    public let owner: JSONValue
    /// The SHA-256 of the file's bytes: events and gate evidence name the version by it.
    public let digest: String

    /// The version numbers a model may have.
    public static let numbers = 1...1_000_000

    public static func path(model: String, version: Int) -> String {
        "\(Registry.root)/\(model)/versions/\(version).json"
    }

    init(bytes: [UInt8], file: String) throws {
        let value = try JSONParser.parse(bytes, source: file)
        guard let model = value["model"]?.string, let run = value["run"]?.string,
            let artifacts = value["artifacts"]?.array
        else {
            throw RegistryError.malformedFile(
                file: file, detail: "a version file needs model, version, run and artifacts")
        }
        guard let version = value["version"]?.int(in: ModelVersion.numbers) else {
            throw RegistryError.malformedFile(
                file: file, detail: "version must be a whole number from 1 to \(ModelVersion.numbers.upperBound)")
        }
        self.model = model
        self.version = version
        self.run = run
        self.artifacts = try artifacts.map { try ModelArtifact($0, file: file) }
        created = value["created"]?.string ?? ""
        owner = value["owner"] ?? .null
        digest = try SHA256.hex(of: bytes)
    }

    static func bytes(model: String, version: Int, run: String, artifacts: [ModelArtifact], owner: JSONValue) -> [UInt8]
    {
        let value: JSONValue = .object([
            "schema_version": .int(schemaVersion), "model": .string(model), "version": .int(Int64(version)),
            "run": .string(run), "artifacts": .array(artifacts.map(\.json)), "created": .string(Timestamp.now()),
            "owner": owner,
        ])
        return Array(JSONWriter.pretty(value).utf8)
    }
}

/// `.mlops/models/<name>/events/<time>-<sha12>.json`: one per stage change, approval, gate evaluation or rollback.
/// A new file every time and never an edit, so branches that both promote or approve merge cleanly.
public struct RegistryEvent: Sendable {
    public static let schemaVersion: Int64 = 1

    public enum Kind: String, Sendable {
        /// A version moved stage (registration is a move to draft).
        case stage
        /// Someone approved a version.
        case approval
        /// Gates were evaluated for a version and a target stage: the evidence.
        case gate
        /// Production went back to an earlier version.
        case rollback
        /// A rollout of a version started, changed step, paused, resumed, was aborted, promoted or finished: the
        /// decision and the numbers it came from (the fold does not apply it; a promotion is a stage event).
        case rollout
    }

    /// The file name without `.json`: sortable by time, unique by content.
    public let id: String
    /// The file's exact bytes: what a signature covers and what the name's digest is of.
    public let bytes: [UInt8]
    /// The detached SSH signature beside the file (`<id>.json.sig`), when there is one.
    public internal(set) var signature: [UInt8]?
    /// The time as seconds since 1970, parsed from `time`.
    public let seconds: Double
    public let model: String
    public let version: Int
    public let kind: Kind
    public let time: String
    /// Every field, as written.
    public let value: JSONValue

    public var from: Stage? { value["from"]?.string.flatMap(Stage.init(rawValue:)) }
    public var to: Stage? { value["to"]?.string.flatMap(Stage.init(rawValue:)) }
    public var actorEmail: String { value["actor"]?["email"]?.string ?? "" }
    public var actorName: String { value["actor"]?["name"]?.string ?? "" }
    public var reason: String { value["reason"]?.string ?? value["comment"]?.string ?? "" }
    public var versionDigest: String { value["version_digest"]?.string ?? "" }
    public var passed: Bool { value["passed"]?.bool == true }
    public var rolledBack: Int? { value["rolled_back"]?.int(in: ModelVersion.numbers) }
    /// True when the file's name ends in the first 12 hex digits of its bytes' SHA-256, as git ml names events.
    public var isNamedForContent: Bool {
        guard let suffix = id.split(separator: "-").last, let digest = try? SHA256.hex(of: bytes) else { return false }
        return suffix == digest.prefix(12)
    }
    public var artifacts: [(path: String, sha256: String)] {
        (value["artifacts"]?.array ?? []).compactMap { item in
            guard let path = item["path"]?.string, let sha256 = item["sha256"]?.string else { return nil }
            return (path, sha256)
        }
    }

    /// One line for people: `v3 staging -> production by alice@example.com: beats v2`.
    public var summary: String {
        let who = actorEmail.isEmpty ? "" : " by \(actorEmail)"
        let why = reason.isEmpty ? "" : ": \(reason)"
        switch kind {
        case .stage: return "v\(version) \(from?.rawValue ?? "new") -> \(to?.rawValue ?? "?")\(who)\(why)"
        case .approval: return "v\(version) approved\(who)\(why)"
        case .gate:
            return "v\(version) gates for \(value["stage"]?.string ?? "?") \(passed ? "passed" : "failed")\(who)"
        case .rollback:
            return "v\(version) back in production, v\(rolledBack.map(String.init) ?? "?") rolled back\(who)\(why)"
        case .rollout:
            let strategy = value["strategy"]?.string ?? "?"
            return "v\(version) \(strategy) rollout \(value["action"]?.string ?? "?")\(who)\(why)"
        }
    }

    init(id: String, bytes: [UInt8], file: String) throws {
        let value = try JSONParser.parse(bytes, source: file)
        guard let model = value["model"]?.string, let kind = value["kind"]?.string.flatMap(Kind.init(rawValue:)),
            let time = value["time"]?.string
        else { throw RegistryError.malformedFile(file: file, detail: "an event needs model, version, kind and time") }
        guard let version = value["version"]?.int(in: ModelVersion.numbers) else {
            throw RegistryError.malformedFile(
                file: file, detail: "version must be a whole number from 1 to \(ModelVersion.numbers.upperBound)")
        }
        guard let seconds = Timestamp.seconds(time) else {
            throw RegistryError.malformedFile(
                file: file, detail: "time \(time.prefix(40)) is not a UTC time like 2026-12-01T09:30:00.000000Z")
        }
        if let rolledBack = value["rolled_back"], rolledBack != .null, rolledBack.int(in: ModelVersion.numbers) == nil {
            throw RegistryError.malformedFile(file: file, detail: "rolled_back must be a version number")
        }
        self.id = id
        self.bytes = bytes
        self.seconds = seconds
        self.model = model
        self.version = version
        self.kind = kind
        self.time = time
        self.value = value
    }

    /// The event's bytes and file name for `fields` (model, version, kind and the rest).
    static func make(_ fields: [String: JSONValue]) throws -> (name: String, bytes: [UInt8]) {
        var fields = fields
        let time = Timestamp.now()
        fields["schema_version"] = .int(schemaVersion)
        fields["time"] = .string(time)
        let bytes = Array(JSONWriter.pretty(.object(fields)).utf8)
        let stamp = time.filter { $0 != "-" && $0 != ":" }
        return ("\(stamp)-\(try SHA256.hex(of: bytes).prefix(12))", bytes)
    }
}
