import GitMLBasics
import GitMLGit
import GitMLLineage
import GitMLProvenance
import GitMLStore

/// Reads the registry (`.mlops/models/`) from a source: the work tree or a commit.
public struct Registry {
    /// Where models live, relative to the repository root.
    public static let root = ".mlops/models"

    let source: any RegistrySource

    public init(source: any RegistrySource) { self.source = source }

    /// Checks a model name: it becomes a directory name, so nothing that could leave `.mlops/models`.
    public static func validate(name: String) throws {
        let allowed = name.utf8.allSatisfy { byte in
            (0x30...0x39).contains(byte) || (0x41...0x5A).contains(byte) || (0x61...0x7A).contains(byte)
                || byte == 0x2E || byte == 0x5F || byte == 0x2D
        }
        guard allowed, let first = name.utf8.first, first != 0x2E, first != 0x2D, first != 0x5F, name.utf8.count <= 100
        else { throw RegistryError.badModelName(name) }
    }

    /// Splits `name@reference` (`churn@production`, `churn@3`); the reference is nil when absent.
    public static func split(_ text: String) -> (name: String, reference: String?) {
        guard let at = text.firstIndex(of: "@") else { return (text, nil) }
        return (String(text[..<at]), String(text[text.index(after: at)...]))
    }

    /// Registered model names, sorted.
    public func modelNames() throws -> [String] {
        try source.names(in: Self.root).filter { (try? Self.validate(name: $0)) != nil }.sorted()
    }

    /// A model's versions and events, folded. Events dated after `now` plus `ModelState.clockSkew` are left out of
    /// the fold (and listed as such), so a far-future date cannot freeze a model's stage.
    public func model(_ name: String, now: Double = Timestamp.nowSeconds()) throws -> ModelState {
        try Self.validate(name: name)
        let directory = "\(Self.root)/\(name)"
        let versionNames = try source.names(in: directory + "/versions")
        guard !versionNames.isEmpty else { throw RegistryError.modelNotFound(name, known: try modelNames()) }
        var versions: [ModelVersion] = []
        for file in versionNames where file.hasSuffix(".json") && !file.hasPrefix(".") {
            let path = "\(directory)/versions/\(file)"
            guard let bytes = try source.contents(of: path) else { continue }
            let version = try ModelVersion(bytes: bytes, file: path)
            guard version.model == name, "\(version.version).json" == file else {
                throw RegistryError.malformedFile(
                    file: path, detail: "names \(version.model) version \(version.version)")
            }
            versions.append(version)
        }
        return ModelState(name: name, versions: versions, events: try events(of: name), now: now)
    }

    /// A model's event files, unsorted.
    public func events(of name: String) throws -> [RegistryEvent] {
        let directory = "\(Self.root)/\(name)/events"
        return try source.names(in: directory).compactMap { file in
            guard file.hasSuffix(".json"), !file.hasPrefix(".") else { return nil }
            let path = "\(directory)/\(file)"
            guard let bytes = try source.contents(of: path) else { return nil }
            var event = try RegistryEvent(id: String(file.dropLast(5)), bytes: bytes, file: path)
            guard event.model == name else {
                throw RegistryError.malformedFile(file: path, detail: "is an event of \(event.model), not \(name)")
            }
            event.signature = try source.contents(of: SSHSignatures.signaturePath(of: path))
            return event
        }
    }

    /// The event at a repository-relative path (`.mlops/models/<name>/events/<id>.json`).
    public func event(at path: String) throws -> RegistryEvent? {
        guard let bytes = try source.contents(of: path) else { return nil }
        let file = path.split(separator: "/").last.map(String.init) ?? path
        var event = try RegistryEvent(id: String(file.dropLast(5)), bytes: bytes, file: path)
        event.signature = try source.contents(of: SSHSignatures.signaturePath(of: path))
        return event
    }
}
