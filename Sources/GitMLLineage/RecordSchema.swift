import GitMLBasics
import GitMLStore

/// The shape every run record must have (schema version 1, documented in docs/format.md).
public enum RecordSchema {
    /// The version this git-ml writes and reads.
    public static let version: Int64 = 1

    /// Throws `invalidRecord` naming the first field that is missing or of the wrong type.
    public static func validate(_ record: JSONValue, file: String) throws {
        func fail(_ detail: String) -> LineageError { .invalidRecord(file: file, detail: detail) }
        guard case .object(let top) = record else { throw fail("a record must be a JSON object") }
        guard case .int(let schema)? = top["schema_version"] else { throw fail("schema_version is missing") }
        guard schema == version else {
            throw fail(
                "schema_version \(schema) is not supported by git-ml \(GitMLVersion.current) (it reads \(version))")
        }
        guard let kind = top["kind"]?.string, ["run", "snapshot"].contains(kind) else {
            throw fail("kind must be \"run\" or \"snapshot\"")
        }
        guard let status = top["status"]?.string, ["succeeded", "failed", "recorded"].contains(status) else {
            throw fail("status must be succeeded, failed or recorded")
        }
        guard top["created"]?.string != nil else { throw fail("created is missing") }
        guard let git = top["git"]?.object, git["dirty"]?.bool != nil else { throw fail("git.dirty is missing") }
        if let patch = git["patch"], patch != .null {
            guard let digest = patch.string, SHA256.isDigest(digest) else { throw fail("git.patch must be a sha256") }
        }
        for section in ["data", "artifacts"] {
            guard let items = top[section]?.array else { throw fail("\(section) must be a list") }
            for item in items {
                guard let path = item["path"]?.string, !path.hasPrefix("/"), !path.split(separator: "/").contains("..")
                else { throw fail("\(section) entries need a relative path inside the repository") }
                if item["missing"]?.bool == true { continue }
                guard let digest = item["sha256"]?.string, SHA256.isDigest(digest) else {
                    throw fail("\(section) entry \(path) has no valid sha256")
                }
            }
        }
        for section in ["params", "metrics", "environment"] {
            guard top[section]?.object != nil else { throw fail("\(section) must be an object") }
        }
        guard let parents = top["parents"]?.array, parents.allSatisfy({ $0.string.map(SHA256.isDigest) ?? false })
        else { throw fail("parents must be a list of run ids") }
        if kind == "run" {
            guard let command = top["command"]?.object, command["argv"]?.array != nil else {
                throw fail("a run needs command.argv")
            }
        }
    }
}

/// UTC timestamps in ISO 8601 with microseconds, so records sort by creation and never tie in practice.
public enum Timestamp {
    public static func now() -> String {
        var spec = timespec()
        clock_gettime(CLOCK_REALTIME, &spec)
        var seconds = spec.tv_sec
        var parts = tm()
        gmtime_r(&seconds, &parts)
        func pad(_ n: Int32, _ width: Int) -> String {
            let s = String(n)
            return String(repeating: "0", count: max(0, width - s.count)) + s
        }
        return "\(pad(parts.tm_year + 1900, 4))-\(pad(parts.tm_mon + 1, 2))-\(pad(parts.tm_mday, 2))T"
            + "\(pad(parts.tm_hour, 2)):\(pad(parts.tm_min, 2)):\(pad(parts.tm_sec, 2))."
            + "\(pad(Int32(spec.tv_nsec / 1000), 6))Z"
    }
}

#if canImport(Glibc)
    import Glibc
#endif
