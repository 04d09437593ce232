import GitMLBasics
import GitMLGit
import GitMLLineage
import GitMLStore

#if canImport(Glibc)
    import Glibc
#endif

/// Installs git-ml's `pre-push` shim the way git-lfs does, but never overwrites: a hook already there (git-lfs's,
/// husky's, a user's) is moved aside and run first, with the same arguments and input; uninstall puts it back.
public struct HookInstaller {
    /// The first line after the shebang marks the shim as git-ml's.
    static let marker = "# git-ml pre-push hook"
    /// Where an existing hook is kept while git-ml's shim is installed.
    static let previousSuffix = ".git-ml-previous"

    static let shim = """
        #!/bin/sh
        \(marker): installed by `git ml hook install`; `git ml hook uninstall` restores any hook it replaced.
        # Blocks a push that promotes a model without passing gate evidence and approvals (docs/hooks.md).
        command -v git-ml >/dev/null 2>&1 || {
            echo >&2 "This repository uses git-ml's pre-push hook, but git-ml is not on your PATH."
            echo >&2 "Install git-ml, or remove the hook with: rm \\"$0\\""
            exit 2
        }
        input=$(cat)
        previous="$0\(previousSuffix)"
        if [ -x "$previous" ]; then
            if [ -n "$input" ]; then printf '%s\\n' "$input"; fi | "$previous" "$@" || exit $?
        fi
        if [ -n "$input" ]; then printf '%s\\n' "$input"; fi | git-ml hook pre-push "$@"

        """

    public enum Installed: Equatable, Sendable { case installed, chained(previous: String), alreadyInstalled }
    public enum Removed: Equatable, Sendable { case removed, restored(previous: String), notInstalled }

    let repository: Repository

    public init(repository: Repository) { self.repository = repository }

    /// `core.hooksPath` when set (relative to the work tree, as git reads it), else the common git dir's hooks/.
    public var hooksDirectory: String {
        if let configured = repository.configValue("core.hooksPath"), !configured.isEmpty {
            let expanded =
                configured.hasPrefix("~/")
                ? (getenv("HOME").map { String(cString: $0) } ?? "") + configured.dropFirst() : configured
            return RepositoryPath.normalize(expanded.hasPrefix("/") ? expanded : repository.root + "/" + expanded)
        }
        return repository.commonDirectory + "/hooks"
    }

    var hookPath: String { hooksDirectory + "/pre-push" }

    static func isOurs(_ path: String) -> Bool {
        guard let bytes = try? AtomicFile.read(path, limit: 1 << 16) else { return false }
        return String(decoding: bytes, as: UTF8.self).contains(marker)
    }

    /// Installs the shim; an existing foreign hook is kept beside it and runs first.
    public func install() throws -> Installed {
        let hook = hookPath
        var info = stat()
        if lstat(hook, &info) == 0 {
            if Self.isOurs(hook) { return .alreadyInstalled }
            let previous = hook + Self.previousSuffix
            guard lstat(previous, &info) != 0 else {
                throw StoreError("keep the existing hook beside", path: previous, errno: EEXIST)
            }
            guard rename(hook, previous) == 0 else { throw StoreError("move aside", path: hook) }
            try AtomicFile.write(Array(Self.shim.utf8), to: hook, mode: 0o755)
            return .chained(previous: previous)
        }
        try AtomicFile.write(Array(Self.shim.utf8), to: hook, mode: 0o755)
        return .installed
    }

    /// Removes the shim and puts back the hook it replaced, byte for byte.
    public func uninstall() throws -> Removed {
        let hook = hookPath
        guard FileSystem.exists(hook) else { return .notInstalled }
        guard Self.isOurs(hook) else { throw GateError.hookNotOurs(path: hook) }
        let previous = hook + Self.previousSuffix
        if FileSystem.exists(previous) {
            guard rename(previous, hook) == 0 else { throw StoreError("restore", path: previous) }
            return .restored(previous: hook)
        }
        guard unlink(hook) == 0 else { throw StoreError("remove", path: hook) }
        return .removed
    }
}

/// One line git gives a pre-push hook: `<local ref> <local sha> <remote ref> <remote sha>`.
public struct PushUpdate: Sendable, Equatable {
    public var localRef: String
    public var localSHA: String
    public var remoteRef: String
    public var remoteSHA: String

    static let zero = String(repeating: "0", count: 40)

    /// Parses git's input; malformed lines are an error (a hook must not guess).
    public static func parse(_ text: String) throws -> [PushUpdate] {
        try text.split(separator: "\n").filter { !$0.trimmingCharacters(in: .whitespaces).isEmpty }.map { line in
            let fields = line.split(separator: " ")
            guard fields.count == 4 else {
                throw InputError.malformed(
                    source: "pre-push input", detail: "expected 4 fields in \"\(line.prefix(120))\"")
            }
            return PushUpdate(
                localRef: String(fields[0]), localSHA: String(fields[1]), remoteRef: String(fields[2]),
                remoteSHA: String(fields[3]))
        }
    }

    /// Deleting a ref pushes nothing to judge.
    public var isDeletion: Bool { localSHA.allSatisfy { $0 == "0" } }
    /// Tags carry no registry events worth blocking on.
    public var isTag: Bool { remoteRef.hasPrefix("refs/tags/") }
}

/// The pre-push hook's verdict over git's ref updates.
public struct PrePushVerdict: Sendable {
    public var promotions = 0
    public var blocked: [BlockedPromotion] = []
}

extension PromotionCheck {
    /// Judges every branch update of a push to `remote`: what each pushed commit adds over what the remote has
    /// (the remote's old sha when known here, else every remote-tracking ref of `remote`).
    public func prePush(remote: String, updates: [PushUpdate]) throws -> PrePushVerdict {
        var verdict = PrePushVerdict()
        for update in updates where !update.isDeletion && !update.isTag {
            let known = !update.remoteSHA.allSatisfy { $0 == "0" } && repository.hasObject(update.remoteSHA)
            let bases = known ? [update.remoteSHA] : repository.remoteTrackingTips(remote)
            let result = try check(new: update.localSHA, bases: bases)
            verdict.promotions += result.promotions
            verdict.blocked += result.blocked.filter { blocked in
                !verdict.blocked.contains { $0.event == blocked.event }
            }
        }
        return verdict
    }
}
