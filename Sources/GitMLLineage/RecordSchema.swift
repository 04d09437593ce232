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
                for count in ["size", "files"] {
                    if let value = item[count], value != .null, value.integer(in: 0...Int64.max) == nil {
                        throw fail("\(section) entry \(path): \(count) must be a whole number of at least 0")
                    }
                }
            }
        }
        if let seed = top["seed"], seed != .null {
            guard let value = seed["value"], value.integer(in: 0...Int64(UInt32.max)) != nil else {
                throw fail("seed.value must be a whole number from 0 to 4294967295")
            }
        }
        if let command = top["command"]?.object {
            if let cwd = command["cwd"], cwd != .null {
                guard let text = cwd.string, !text.hasPrefix("/"), !text.split(separator: "/").contains("..") else {
                    throw fail("command.cwd must be a relative path inside the repository")
                }
            }
            if let status = command["exit_status"], status != .null, status.integer(in: -1...255) == nil {
                throw fail("command.exit_status must be a whole number from -1 to 255")
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
        return format(seconds: spec.tv_sec, microseconds: Int32(spec.tv_nsec / 1000))
    }

    /// A time in seconds since 1970, written as `now()` writes times.
    public static func format(seconds: Double) -> String {
        let whole = seconds.rounded(.down)
        guard whole.isFinite, abs(whole) < 1e12 else { return "" }
        return format(seconds: Int(whole), microseconds: Int32(min(999_999, (seconds - whole) * 1e6)))
    }

    private static func format(seconds whole: Int, microseconds: Int32) -> String {
        var seconds = whole
        var parts = tm()
        gmtime_r(&seconds, &parts)
        func pad(_ n: Int32, _ width: Int) -> String {
            let s = String(n)
            return String(repeating: "0", count: max(0, width - s.count)) + s
        }
        return "\(pad(parts.tm_year + 1900, 4))-\(pad(parts.tm_mon + 1, 2))-\(pad(parts.tm_mday, 2))T"
            + "\(pad(parts.tm_hour, 2)):\(pad(parts.tm_min, 2)):\(pad(parts.tm_sec, 2))."
            + "\(pad(microseconds, 6))Z"
    }

    /// Seconds since 1970 for a UTC time written as `now()` writes it (`YYYY-MM-DDTHH:MM:SS[.fraction]Z`);
    /// nil for anything else, so a hand-written date cannot be read two ways.
    public static func seconds(_ text: String) -> Double? {
        let bytes = Array(text.utf8)
        guard bytes.count >= 20, bytes.count <= 30, bytes.last == UInt8(ascii: "Z") else { return nil }
        func number(_ range: Range<Int>) -> Int? {
            var value = 0
            for i in range {
                guard (0x30...0x39).contains(bytes[i]) else { return nil }
                value = value * 10 + Int(bytes[i] - 0x30)
            }
            return value
        }
        let separators: [(Int, UInt8)] = [(4, 0x2D), (7, 0x2D), (10, 0x54), (13, 0x3A), (16, 0x3A)]
        guard separators.allSatisfy({ bytes[$0.0] == $0.1 }), let year = number(0..<4), let month = number(5..<7),
            let day = number(8..<10), let hour = number(11..<13), let minute = number(14..<16),
            let second = number(17..<19), (1970...9999).contains(year), (1...12).contains(month),
            (1...31).contains(day), hour < 24, minute < 60, second < 61
        else { return nil }
        var fraction = 0.0
        if bytes.count > 20 {
            guard bytes[19] == UInt8(ascii: "."), let digits = number(20..<(bytes.count - 1)), bytes.count > 21 else {
                return nil
            }
            fraction = Double(digits) / pow(10, Double(bytes.count - 21))
        } else if bytes[19] != UInt8(ascii: "Z") {
            return nil
        }
        // Days from the civil date (Howard Hinnant's algorithm), valid for every year accepted above.
        let y = month <= 2 ? year - 1 : year
        let era = y / 400
        let yearOfEra = y - era * 400
        let dayOfYear = (153 * (month + (month > 2 ? -3 : 9)) + 2) / 5 + day - 1
        let dayOfEra = yearOfEra * 365 + yearOfEra / 4 - yearOfEra / 100 + dayOfYear
        let days = era * 146_097 + dayOfEra - 719_468
        return Double(days * 86_400 + hour * 3600 + minute * 60 + second) + fraction
    }

    /// Seconds since 1970 now.
    public static func nowSeconds() -> Double {
        var spec = timespec()
        clock_gettime(CLOCK_REALTIME, &spec)
        return Double(spec.tv_sec) + Double(spec.tv_nsec) / 1e9
    }
}

#if canImport(Glibc)
    import Glibc
#endif
