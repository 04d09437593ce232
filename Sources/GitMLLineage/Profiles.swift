import GitMLBasics
import GitMLDrift
import GitMLStore

/// Profiles of data tables, stored content-addressed under `.mlops/profiles/` and referenced from run records.
public struct ProfileStore {
    let workspace: Workspace

    public init(workspace: Workspace) { self.workspace = workspace }

    /// The largest profile read: about a thousand numeric columns (each sketch is about 30 KiB).
    static let readLimit = 32 << 20

    /// A stored profile, checked field by field (its bytes against its name first).
    public func read(id: String) throws -> Profile {
        let file = ".mlops/profiles/\(id).json"
        return try Profile(json: JSONParser.parse(stored(id: id), source: file), source: file)
    }

    /// Profiles the table at a user's path (inside the repository) and stores it; returns its id and the profile.
    public func profile(_ userPath: String, name: String? = nil, categorical: Set<String> = [], target: String? = nil)
        throws -> (id: String, profile: Profile)
    {
        let relative = try workspace.resolve(userPath)
        let file = relative.split(separator: "/").last.map(String.init) ?? relative
        let stem = file.split(separator: ".").first.map(String.init) ?? file
        let profile = try PerformanceTrace.measure("profile \(relative)") {
            try ProfileBuilder.build(
                path: workspace.absolute(relative), source: relative, name: name ?? stem, categorical: categorical,
                target: target)
        }
        let bytes = profile.bytes
        let id = try SHA256.hex(of: bytes)
        try workspace.files.writeIfAbsent(bytes, to: ".mlops/profiles/\(id).json")
        return (id, profile)
    }

    /// A stored profile's bytes, checked against its name (a profile is content-addressed).
    public func stored(id: String) throws -> [UInt8] {
        let file = ".mlops/profiles/\(id).json"
        let bytes = try workspace.files.read(file, limit: Self.readLimit)
        guard try SHA256.hex(of: bytes) == id else {
            throw LineageError.invalidRecord(
                file: file, detail: "content does not match its name: the profile was modified")
        }
        return bytes
    }

    /// The id of the stored profile whose id starts with `prefix` (4 or more hex digits), nil when none or several.
    public func id(prefix: String) throws -> String? {
        let lower = prefix.lowercased()
        guard lower.count >= 4, lower.allSatisfy(\.isHexDigit) else { return nil }
        let matches = try workspace.files.list(".mlops/profiles").filter {
            $0.hasPrefix(lower) && $0.hasSuffix(".json")
        }
        return matches.count == 1 ? String(matches[0].dropLast(5)) : nil
    }

    /// A profile named on the command line: a profile JSON file anywhere, or the id (or an id prefix) of one under
    /// `.mlops/profiles`.
    public func load(_ reference: String) throws -> Profile {
        let path = workspace.inputPath(reference)
        if FileSystem.exists(path) && !FileSystem.isDirectory(path) {
            let bytes = try AtomicFile.read(path, limit: Self.readLimit)
            return try Profile(json: JSONParser.parse(bytes, source: reference), source: reference)
        }
        guard let id = try id(prefix: reference) else {
            throw LineageError.badArgument(
                "\(reference) is neither a profile file nor the id of one in .mlops/profiles",
                hint: "pass a profile's JSON file or its id (git ml profile --json prints it)")
        }
        return try read(id: id)
    }

    /// Merges profiles of parts of one table into the profile of the whole and stores it; returns its id and the
    /// profile.
    public func merge(_ references: [String], name: String? = nil) throws -> (id: String, profile: Profile) {
        let parts = try references.map(load)
        let merged = try Profile.merged(
            parts, name: name ?? parts.first?.name ?? "merged",
            source: parts.map(\.source).joined(separator: " + "))
        let bytes = merged.bytes
        let id = try SHA256.hex(of: bytes)
        try workspace.files.writeIfAbsent(bytes, to: ".mlops/profiles/\(id).json")
        return (id, merged)
    }

    /// The reference a run record keeps.
    public static func reference(id: String, profile: Profile) -> JSONValue {
        .object([
            "sha256": .string(id), "name": .string(profile.name), "path": .string(profile.source),
            "rows": .int(profile.rows),
            "columns": .int(Int64(profile.columns.count)),
        ])
    }
}
