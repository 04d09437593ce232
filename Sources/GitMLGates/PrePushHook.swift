import Foundation
import GitMLBasics
import GitMLGit
import GitMLLineage
import GitMLStore

#if canImport(Glibc)
    import Glibc
#endif

/// Installs git-ml's hook shim the way git-lfs does, but never overwrites: a hook already there (git-lfs's,
/// husky's, a user's) is moved aside and run first, with the same arguments and input; uninstall puts it back.
/// On a developer's clone the hook is `pre-push`; on a server's bare repository it is `pre-receive`, which
/// `git push --no-verify` cannot skip.
public struct HookInstaller {
    /// Which hook.
    public enum Kind: String, Sendable {
        case prePush = "pre-push"
        case preReceive = "pre-receive"
    }

    /// Where an existing hook is kept while git-ml's shim is installed.
    static let previousSuffix = ".git-ml-previous"

    /// The first line after the shebang marks the shim as git-ml's.
    var marker: String { "# git-ml \(kind.rawValue) hook" }

    var shim: String {
        """
        #!/bin/sh
        \(marker): installed by `git ml hook install`; `git ml hook uninstall` restores any hook it replaced.
        # Refuses a push that promotes a model without passing its gates and approvals (docs/hooks.md).
        command -v git-ml >/dev/null 2>&1 || {
            echo >&2 "This repository uses git-ml's \(kind.rawValue) hook, but git-ml is not on your PATH."
            echo >&2 "Install git-ml, or remove the hook with: rm \\"$0\\""
            exit 2
        }
        input=$(cat)
        previous="$0\(Self.previousSuffix)"
        if [ -x "$previous" ]; then
            if [ -n "$input" ]; then printf '%s\\n' "$input"; fi | "$previous" "$@" || exit $?
        fi
        if [ -n "$input" ]; then printf '%s\\n' "$input"; fi | git-ml hook \(kind.rawValue) "$@"

        """
    }

    /// git-ml's lines in a husky script: first, so git's ref lines reach git-ml, and handed on to the user's
    /// commands below them unchanged.
    var huskyBlock: String {
        """
        \(marker): added by `git ml hook install`; `git ml hook uninstall` removes these lines.
        git_ml_input=$(cat)
        printf '%s\\n' "$git_ml_input" | git-ml hook \(kind.rawValue) "$@" || exit $?
        exec 0<<GIT_ML_INPUT
        $git_ml_input
        GIT_ML_INPUT
        # end of git-ml \(kind.rawValue) hook

        """
    }

    public enum Installed: Equatable, Sendable {
        case installed, chained(previous: String), alreadyInstalled
        /// Added to the husky script at this path (husky's own way of adding a command to a hook).
        case husky(script: String)
    }
    public enum Removed: Equatable, Sendable {
        case removed, restored(previous: String), notInstalled
        case husky(script: String)
    }

    let repository: Repository
    public let kind: Kind

    public init(repository: Repository, kind: Kind = .prePush) {
        self.repository = repository
        self.kind = kind
    }

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

    var hookPath: String { hooksDirectory + "/" + kind.rawValue }

    /// With husky 9 (`core.hooksPath` is `.husky/_`, whose `h` runs `.husky/<hook>`), the user's own script, where
    /// husky users add commands to a hook: git-ml goes there instead of replacing husky's shim.
    var huskyScript: String? {
        let directory = hooksDirectory
        guard directory.hasSuffix("/_"), FileSystem.exists(directory + "/h") else { return nil }
        return String(directory.dropLast(2)) + "/" + kind.rawValue
    }

    static func mode(of path: String) -> mode_t {
        var info = stat()
        return stat(path, &info) == 0 ? info.st_mode & 0o7777 : 0o755
    }

    func isOurs(_ path: String) -> Bool {
        guard let bytes = try? AtomicFile.read(path, limit: 1 << 16) else { return false }
        return String(decoding: bytes, as: UTF8.self).contains(marker)
    }

    /// Installs the shim; an existing foreign hook is kept beside it and runs first. Under husky, adds git-ml's
    /// lines to the top of the husky script instead (after its `#!` line), creating the script when there is none.
    public func install() throws -> Installed {
        if let script = huskyScript {
            let existing = FileSystem.exists(script) ? String(decoding: try AtomicFile.read(script), as: UTF8.self) : ""
            if existing.contains(marker) { return .alreadyInstalled }
            var lines = existing.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
            let at = lines.first?.hasPrefix("#!") == true ? 1 : 0
            lines.insert(
                contentsOf: huskyBlock.split(separator: "\n", omittingEmptySubsequences: false).dropLast().map(
                    String.init), at: at)
            let mode: mode_t = existing.isEmpty ? 0o755 : Self.mode(of: script)
            try AtomicFile.write(
                Array((existing.isEmpty ? lines.dropLast() : lines[...]).joined(separator: "\n").utf8), to: script,
                mode: mode)
            return .husky(script: script)
        }
        let hook = hookPath
        var info = stat()
        if lstat(hook, &info) == 0 {
            if isOurs(hook) { return .alreadyInstalled }
            let previous = hook + Self.previousSuffix
            guard lstat(previous, &info) != 0 else {
                throw StoreError("keep the existing hook beside", path: previous, errno: EEXIST)
            }
            guard rename(hook, previous) == 0 else { throw StoreError("move aside", path: hook) }
            try AtomicFile.write(Array(shim.utf8), to: hook, mode: 0o755)
            return .chained(previous: previous)
        }
        try AtomicFile.write(Array(shim.utf8), to: hook, mode: 0o755)
        return .installed
    }

    /// Removes the shim and puts back the hook it replaced, byte for byte (under husky: git-ml's lines, and the
    /// script itself when git-ml made it).
    public func uninstall() throws -> Removed {
        if let script = huskyScript, FileSystem.exists(script) {
            let text = String(decoding: try AtomicFile.read(script), as: UTF8.self)
            guard let start = text.range(of: huskyBlock) else { return .notInstalled }
            let rest = text.replacingCharacters(in: start, with: "")
            if rest.isEmpty {
                guard unlink(script) == 0 else { throw StoreError("remove", path: script) }
            } else {
                try AtomicFile.write(Array(rest.utf8), to: script, mode: Self.mode(of: script))
            }
            return .husky(script: script)
        }
        let hook = hookPath
        guard FileSystem.exists(hook) else { return .notInstalled }
        guard isOurs(hook) else { throw GateError.hookNotOurs(path: hook) }
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
        try hookLines(text, fields: 4, hook: "pre-push").map {
            PushUpdate(localRef: $0[0], localSHA: $0[1], remoteRef: $0[2], remoteSHA: $0[3])
        }
    }

    /// The update the pre-commit framework describes in its environment when it runs a `pre-push` stage hook
    /// (it reads git's lines itself and runs hooks once per ref), or nil outside it.
    public static func fromPreCommit(_ environment: [String: String]) -> PushUpdate? {
        guard let to = environment["PRE_COMMIT_TO_REF"], !to.isEmpty else { return nil }
        return PushUpdate(
            localRef: environment["PRE_COMMIT_LOCAL_BRANCH"] ?? "HEAD", localSHA: to,
            remoteRef: environment["PRE_COMMIT_REMOTE_BRANCH"] ?? "",
            remoteSHA: environment["PRE_COMMIT_FROM_REF"] ?? zero
        )
    }

    /// Deleting a ref pushes nothing to judge.
    public var isDeletion: Bool { localSHA.allSatisfy { $0 == "0" } }
    /// Tags carry no registry events worth blocking on.
    public var isTag: Bool { remoteRef.hasPrefix("refs/tags/") }
}

extension PromotionCheck {
    /// Judges every branch update of a push to `remote`: what each pushed commit adds over what the remote has
    /// (the remote's old sha when known here, else every remote-tracking ref of `remote`), under the policy at the
    /// remote's tip of that branch (for a new branch, the remote's default branch).
    public func prePush(remote: String, updates: [PushUpdate]) throws -> PromotionVerdict {
        var verdict = PromotionVerdict()
        for update in updates where !update.isDeletion && !update.isTag {
            let known = !update.remoteSHA.allSatisfy { $0 == "0" } && repository.hasObject(update.remoteSHA)
            let branch = Self.shortName(update.remoteRef)
            let (policyBase, policyName): (String?, String) =
                known ? (update.remoteSHA, "\(remote)/\(branch)") : defaultBranch(of: remote)
            let range = Range(
                new: update.localSHA, bases: known ? [update.remoteSHA] : repository.remoteTrackingTips(remote),
                policyBase: policyBase, policyName: policyName, updatesPolicyRef: known)
            merge(try check(range), into: &verdict)
        }
        return verdict
    }

    /// Judges every branch update a server receives (`<old> <new> <ref>` lines), under the policy at the branch's
    /// old tip (for a new branch, the repository's default branch, HEAD).
    public func preReceive(updates: [ReceiveUpdate]) throws -> PromotionVerdict {
        var verdict = PromotionVerdict()
        // A new branch is judged by the default branch: `gitml.defaultBranch` in the server's configuration, else the
        // branch HEAD names. When neither resolves, its promotions are refused rather than self-judged.
        let defaultBranch =
            repository.configValue("gitml.defaultBranch").map { $0.hasPrefix("refs/") ? $0 : "refs/heads/" + $0 }
            ?? repository.symbolicTarget("HEAD") ?? "HEAD"
        for update in updates where !update.isDeletion && !update.ref.hasPrefix("refs/tags/") {
            let old = update.isCreation ? nil : update.old
            let base = old ?? repository.resolveReference(defaultBranch)
            let name =
                old != nil
                ? Self.shortName(update.ref)
                : base != nil
                    ? Self.shortName(defaultBranch)
                    : "the default branch (\(Self.shortName(defaultBranch))) does not exist on the server; set git config gitml.defaultBranch"
            let range = Range(
                new: update.new, bases: base.map { [$0] } ?? [], policyBase: base, policyName: name,
                updatesPolicyRef: old != nil)
            merge(try check(range), into: &verdict)
        }
        return verdict
    }

    /// Where a new branch's policy comes from: the remote's default branch as this clone knows it.
    private func defaultBranch(of remote: String) -> (String?, String) {
        let candidates =
            [repository.symbolicTarget("refs/remotes/\(remote)/HEAD")].compactMap { $0 }
            + ["refs/remotes/\(remote)/main", "refs/remotes/\(remote)/master"]
        for name in candidates {
            if let tip = repository.resolveReference(name) {
                return (tip, Self.shortName(name))
            }
        }
        return (nil, "\(remote) has no default branch this clone knows of (run git fetch \(remote))")
    }

    private static func shortName(_ ref: String) -> String {
        for prefix in ["refs/heads/", "refs/remotes/"] where ref.hasPrefix(prefix) {
            return String(ref.dropFirst(prefix.count))
        }
        return ref
    }

    private func merge(_ result: PromotionVerdict, into verdict: inout PromotionVerdict) {
        verdict.promotions += result.promotions
        verdict.policy = verdict.policy.isEmpty ? result.policy : verdict.policy
        verdict.blocked += result.blocked.filter { blocked in
            !verdict.blocked.contains { $0.event == blocked.event && $0.reasons == blocked.reasons }
        }
    }
}

/// One line git gives a pre-receive hook: `<old sha> <new sha> <ref>`.
public struct ReceiveUpdate: Sendable, Equatable {
    public var old: String
    public var new: String
    public var ref: String

    /// Parses git's input; malformed lines are an error (a hook must not guess).
    public static func parse(_ text: String) throws -> [ReceiveUpdate] {
        try hookLines(text, fields: 3, hook: "pre-receive").map { ReceiveUpdate(old: $0[0], new: $0[1], ref: $0[2]) }
    }

    public var isDeletion: Bool { new.allSatisfy { $0 == "0" } }
    public var isCreation: Bool { old.allSatisfy { $0 == "0" } }
}

/// The space-separated fields of each non-blank line git gives a hook; a line with another count is an error.
private func hookLines(_ text: String, fields count: Int, hook: String) throws -> [[String]] {
    try text.split(separator: "\n").filter { !$0.trimmingCharacters(in: .whitespaces).isEmpty }.map { line in
        let fields = line.split(separator: " ").map(String.init)
        guard fields.count == count else {
            throw InputError.malformed(
                source: "\(hook) input", detail: "expected \(count) fields in \"\(line.prefix(120))\"")
        }
        return fields
    }
}
