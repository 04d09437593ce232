import GitMLBasics

/// git's configuration as git itself resolves it: system, XDG and global files (`GIT_CONFIG_GLOBAL`,
/// `GIT_CONFIG_NOSYSTEM`, includes), the repository's own, `git -c` and `GIT_CONFIG_COUNT`. Read once per process
/// from `git config --list -z`, because libgit2 reads none of the environment's overrides.
public struct GitConfig: Sendable {
    /// Values by canonical key (section and name lower-cased, subsection as written), in the order git gives.
    let values: [String: [String]]

    init(values: [String: [String]]) { self.values = values }

    /// Parses `git config --list -z`: `key\nvalue\0` per entry (a key alone is a boolean `true`).
    init(listing: [UInt8]) {
        var values: [String: [String]] = [:]
        for entry in listing.split(separator: 0, omittingEmptySubsequences: true) {
            let text = String(decoding: entry, as: UTF8.self)
            let parts = text.split(separator: "\n", maxSplits: 1, omittingEmptySubsequences: false)
            let key = Self.canonical(String(parts[0]))
            values[key, default: []].append(parts.count > 1 ? String(parts[1]) : "true")
        }
        self.values = values
    }

    /// `Section.Sub.Name` -> `section.Sub.name`, as git compares keys.
    static func canonical(_ key: String) -> String {
        guard let first = key.firstIndex(of: "."), let last = key.lastIndex(of: ".") else { return key.lowercased() }
        if first == last { return key.lowercased() }
        return key[..<first].lowercased() + key[first..<last] + key[last...].lowercased()
    }

    /// The value git would use for `key` (the last one set), or nil.
    public func get(_ key: String) -> String? { values[Self.canonical(key)]?.last }

    /// Every value of a multi-valued key, in order.
    public func all(_ key: String) -> [String] { values[Self.canonical(key)] ?? [] }

    /// Keys that begin with `prefix` (canonical), sorted.
    public func keys(withPrefix prefix: String) -> [String] {
        values.keys.filter { $0.hasPrefix(prefix) }.sorted()
    }

    /// A boolean the way git reads one (true/yes/on/1 and an empty or bare key are true).
    public func bool(_ key: String) -> Bool? {
        guard let value = get(key)?.lowercased() else { return nil }
        switch value {
        case "true", "yes", "on", "1", "": return true
        case "false", "no", "off", "0": return false
        default: return nil
        }
    }
}

/// A git identity: who made a change.
public struct GitIdentity: Sendable, Equatable {
    public var name: String
    public var email: String

    public init(name: String, email: String) {
        self.name = name
        self.email = email
    }

    /// Parses `git var GIT_AUTHOR_IDENT`: `Name <email> 1700000000 +0000`.
    init?(ident: String) {
        guard let open = ident.lastIndex(of: "<"), let close = ident.lastIndex(of: ">"), open < close else {
            return nil
        }
        name = ident[..<open].trimmingCharacters(in: .whitespaces)
        email = String(ident[ident.index(after: open)..<close])
        guard !email.isEmpty else { return nil }
    }

    /// The form emails are compared in: trimmed and case-folded, so `Owner@Example.com ` is the owner.
    public static func normalize(_ email: String) -> String {
        email.trimmingCharacters(in: .whitespacesAndNewlines).lowercased()
    }
}

/// Running the `git` program itself, for what only it resolves.
enum GitProgram {
    /// git's standard output for `arguments` run against `gitDirectory`, or nil when git fails or is absent.
    static func output(_ arguments: [String], gitDirectory: String?, workTree: String?, environment: [String: String])
        -> [UInt8]?
    {
        guard let git = Executable.find("git", path: environment["PATH"]) ?? Executable.find("git", path: nil) else {
            return nil
        }
        var env = environment
        if let gitDirectory { env["GIT_DIR"] = gitDirectory }
        if let workTree { env["GIT_WORK_TREE"] = workTree }
        guard
            let result = try? ChildProcess.run(
                executable: git, arguments: ["git"] + arguments, environment: env, directory: workTree ?? gitDirectory,
                echo: .none, input: []),
            result.exitStatus == 0
        else { return nil }
        return result.stdout
    }
}

extension String {
    fileprivate func trimmingCharacters(in set: CharacterClass) -> String {
        var scalars = Substring(self)
        while let first = scalars.first, set.contains(first) { scalars.removeFirst() }
        while let last = scalars.last, set.contains(last) { scalars.removeLast() }
        return String(scalars)
    }
}

extension Substring {
    fileprivate func trimmingCharacters(in set: CharacterClass) -> String { String(self).trimmingCharacters(in: set) }
}

/// The two character classes trimming needs, without Foundation.
enum CharacterClass {
    case whitespaces, whitespacesAndNewlines

    func contains(_ c: Character) -> Bool {
        switch self {
        case .whitespaces: return c == " " || c == "\t"
        case .whitespacesAndNewlines: return c.isWhitespace
        }
    }
}
