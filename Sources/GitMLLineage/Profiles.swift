import GitMLBasics
import GitMLDrift
import GitMLStore

/// Profiles of data tables, stored content-addressed under `.mlops/profiles/` and referenced from run records.
public struct ProfileStore {
    let workspace: Workspace

    public init(workspace: Workspace) { self.workspace = workspace }

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

    /// The reference a run record keeps.
    public static func reference(id: String, profile: Profile) -> JSONValue {
        .object([
            "sha256": .string(id), "name": .string(profile.name), "path": .string(profile.source),
            "rows": .int(profile.rows),
            "columns": .int(Int64(profile.columns.count)),
        ])
    }
}
