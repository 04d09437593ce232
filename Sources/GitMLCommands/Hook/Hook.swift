import ArgumentParser
import Foundation
import GitMLBasics
import GitMLCards
import GitMLGates
import GitMLGit
import GitMLLineage
import GitMLRemote
import GitMLServe

/// `git ml hook`: the pre-push hook on clones, the pre-receive hook on servers.
struct Hook: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Install, remove or run the hooks that refuse ungated promotions.",
        subcommands: [HookInstall.self, HookUninstall.self, HookPrePush.self, HookPreReceive.self])
}

/// `--server`: the pre-receive hook of a server's (bare) repository instead of a clone's pre-push hook.
struct HookKindOption: ParsableArguments {
    @Flag(
        help: """
            The pre-receive hook of the repository that receives pushes (a bare repository on a git server), which \
            git push --no-verify cannot skip.
            """)
    var server = false

    var kind: HookInstaller.Kind { server ? .preReceive : .prePush }

    /// The repository to install into: a clone's, or (with --server) the one started in, bare or not.
    func repository(_ context: Context) throws -> Repository {
        server
            ? try Repository(hookEnvironment: context.environment, directory: context.currentDirectory)
            : try context.workspace(requireInitialized: false).repository
    }
}

struct HookInstall: GitMLCommand {
    static let configuration = CommandConfiguration(
        commandName: "install",
        abstract: "Install the pre-push hook (an existing hook is kept and still runs first).",
        discussion: """
            Respects core.hooksPath. With --server, installs the pre-receive hook of the repository you are in (a \
            bare repository on your git server), which runs the same check on every pushed branch.

            Example: git ml hook install
            Example: cd /srv/git/project.git && git ml hook install --server
            """)

    @OptionGroup var common: CommonOptions
    @OptionGroup var hook: HookKindOption

    func execute() throws -> Int32 {
        let context = try Context(common)
        print(try installHook(try hook.repository(context), kind: hook.kind))
        return 0
    }
}

/// Installs the hook and says what it did.
func installHook(_ repository: Repository, kind: HookInstaller.Kind = .prePush) throws -> String {
    let installer = HookInstaller(repository: repository, kind: kind)
    let name = kind.rawValue
    switch try installer.install() {
    case .installed: return "installed \(name) hook in \(installer.hooksDirectory)"
    case .chained(let previous):
        return
            "installed \(name) hook in \(installer.hooksDirectory); your previous hook is now \(previous) and runs first"
    case .alreadyInstalled: return "the \(name) hook is already installed in \(installer.hooksDirectory)"
    case .husky(let script): return "added git-ml's \(name) check to husky's \(script); husky's own commands still run"
    }
}

struct HookUninstall: GitMLCommand {
    static let configuration = CommandConfiguration(
        commandName: "uninstall",
        abstract: "Remove the hook and restore the hook it replaced, exactly.",
        discussion: "Example: git ml hook uninstall (or --server in the server's repository)")

    @OptionGroup var common: CommonOptions
    @OptionGroup var hook: HookKindOption

    func execute() throws -> Int32 {
        let context = try Context(common)
        let installer = HookInstaller(repository: try hook.repository(context), kind: hook.kind)
        let name = hook.kind.rawValue
        switch try installer.uninstall() {
        case .removed: print("removed the \(name) hook from \(installer.hooksDirectory)")
        case .restored(let previous):
            print("removed git-ml's \(name) hook and restored your previous hook at \(previous)")
        case .notInstalled: print("no \(name) hook is installed in \(installer.hooksDirectory); nothing to do")
        case .husky(let script): print("removed git-ml's lines from husky's \(script)")
        }
        return 0
    }
}

struct HookPrePush: GitMLCommand {
    static let configuration = CommandConfiguration(
        commandName: "pre-push",
        abstract: "The pre-push hook itself: reads git's ref updates on stdin and refuses ungated promotions.",
        discussion: """
            git runs this through the installed shim. Every promotion a pushed commit adds is judged again, as \
            git ml gate check judges it, under the gates, approvers and allowed_signers of the branch pushed to. \
            It exits 1, listing each refused change with its reasons and the command that fixes it. The same check \
            runs in CI (git ml verify --range A..B) and on the server (git ml hook install --server).
            """)

    @OptionGroup var common: CommonOptions
    @Argument(help: "The remote's name (under the pre-commit framework: from PRE_COMMIT_REMOTE_NAME).") var remote:
        String?
    @Argument(help: "The remote's URL.") var url: String?

    func execute() throws -> Int32 {
        let context = try Context(common)
        let workspace = try context.workspace(requireInitialized: false)
        var updates = try PushUpdate.parse(readStandardInput())
        // The pre-commit framework keeps git's lines and describes the ref in its environment instead.
        if updates.isEmpty, let update = PushUpdate.fromPreCommit(context.environment) { updates = [update] }
        guard let remote = remote ?? context.environment["PRE_COMMIT_REMOTE_NAME"] else {
            throw LineageError.badArgument(
                "no remote was named", hint: "git ml hook pre-push <remote> [<url>] < refs (git passes both)")
        }
        let verdict = try promotionCheck(workspace).prePush(remote: remote, updates: updates)
        guard verdict.blocked.isEmpty else {
            reportBlocked(verdict.blocked, policy: verdict.policy)
            throw GateError.blocked(count: verdict.blocked.count)
        }
        // remote.push_on_git_push: the artifacts go before the lineage that names them.
        if let (remote, reports, skipped) = try RemoteSync.pushForGitPush(
            workspace: workspace, credentials: CredentialSource())
        {
            if let skipped { printError("git-ml: \(skipped)") }
            for report in reports where report.state == "pushed" {
                printError("git-ml: pushed \(report.title) to \(remote) (\(report.sent) blob(s) sent)")
            }
        }
        return 0
    }
}

struct HookPreReceive: GitMLCommand {
    static let configuration = CommandConfiguration(
        commandName: "pre-receive",
        abstract: "The server's pre-receive hook itself: refuses pushed promotions that do not pass their gates.",
        discussion: """
            git runs this through the shim git ml hook install --server writes. It reads <old> <new> <ref> lines \
            and judges each branch update as the pre-push hook does, under the policy at the branch's current tip \
            (for a new branch, the default branch). Files a run recorded that are not in git cannot be re-hashed \
            on the server, so a lineage gate on them fails there (docs/trust.md).
            """)

    @OptionGroup var common: CommonOptions

    func execute() throws -> Int32 {
        let context = try Context(common)
        let repository = try Repository(hookEnvironment: context.environment, directory: context.currentDirectory)
        let updates = try ReceiveUpdate.parse(readStandardInput())
        let verdict = try PromotionCheck(repository: repository).preReceive(updates: updates)
        guard !verdict.blocked.isEmpty else { return 0 }
        reportBlocked(verdict.blocked, policy: verdict.policy)
        throw GateError.blocked(count: verdict.blocked.count)
    }
}

private func readStandardInput() -> String {
    String(decoding: FileHandle.standardInput.readDataToEndOfFile(), as: UTF8.self)
}

/// The push check of a clone: its work tree and object store re-hash what commits do not carry, cards are
/// examined in a scratch copy of the pushed `.mlops`, and golden probes are replayed against the version started
/// from the clone's object store.
func promotionCheck(_ workspace: Workspace) -> PromotionCheck {
    PromotionCheck(
        repository: workspace.repository, workspace: workspace, cardExaminer: cardExaminer,
        probeExaminer: Gateway.probeExaminer(workspace: workspace, cardExaminer: cardExaminer))
}

/// Prints each refused change: what, why, and the command that fixes it.
func reportBlocked(_ blocked: [BlockedPromotion], policy: String) {
    for item in blocked {
        let what = item.stage == "registry" ? "\(item.model)" : "\(item.model) \(item.version) -> \(item.stage)"
        printError("blocked: \(what) (\(item.event))")
        for reason in item.reasons { printError("  - \(reason)") }
        printError("  fix: \(item.fix)")
    }
    printError("policy: gates, approvers and allowed_signers of \(policy)")
}
