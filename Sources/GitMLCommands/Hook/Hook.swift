import ArgumentParser
import Foundation
import GitMLBasics
import GitMLGates
import GitMLGit

/// `git ml hook`: the pre-push hook.
struct Hook: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Install, remove or run the pre-push hook that blocks ungated promotions.",
        subcommands: [HookInstall.self, HookUninstall.self, HookPrePush.self])
}

struct HookInstall: GitMLCommand {
    static let configuration = CommandConfiguration(
        commandName: "install",
        abstract: "Install the pre-push hook (an existing hook is kept and still runs first).",
        discussion: "Respects core.hooksPath. Example: git ml hook install")

    @OptionGroup var common: CommonOptions

    func execute() throws -> Int32 {
        let workspace = try Context(common).workspace(requireInitialized: false)
        print(try installHook(workspace.repository))
        return 0
    }
}

/// Installs the hook and says what it did.
func installHook(_ repository: Repository) throws -> String {
    let installer = HookInstaller(repository: repository)
    switch try installer.install() {
    case .installed: return "installed pre-push hook in \(installer.hooksDirectory)"
    case .chained(let previous):
        return
            "installed pre-push hook in \(installer.hooksDirectory); your previous hook is now \(previous) and runs first"
    case .alreadyInstalled: return "the pre-push hook is already installed in \(installer.hooksDirectory)"
    }
}

struct HookUninstall: GitMLCommand {
    static let configuration = CommandConfiguration(
        commandName: "uninstall",
        abstract: "Remove the pre-push hook and restore the hook it replaced, exactly.",
        discussion: "Example: git ml hook uninstall")

    @OptionGroup var common: CommonOptions

    func execute() throws -> Int32 {
        let workspace = try Context(common).workspace(requireInitialized: false)
        let installer = HookInstaller(repository: workspace.repository)
        switch try installer.uninstall() {
        case .removed: print("removed the pre-push hook from \(installer.hooksDirectory)")
        case .restored(let previous):
            print("removed git-ml's pre-push hook and restored your previous hook at \(previous)")
        case .notInstalled: print("no pre-push hook is installed in \(installer.hooksDirectory); nothing to do")
        }
        return 0
    }
}

struct HookPrePush: GitMLCommand {
    static let configuration = CommandConfiguration(
        commandName: "pre-push",
        abstract: "The pre-push hook itself: reads git's ref updates on stdin and blocks ungated promotions.",
        discussion: """
            git runs this through the installed shim. It exits 1, listing each blocked promotion with its failing \
            checks and the command that fixes it, when a pushed commit adds a promotion to staging or production \
            without passing gate evidence for that exact version, the approvals its gates require, or with an \
            artifact changed since registration. The same check runs in CI: git ml verify --range A..B.
            """)

    @OptionGroup var common: CommonOptions
    @Argument(help: "The remote's name.") var remote: String
    @Argument(help: "The remote's URL.") var url: String?

    func execute() throws -> Int32 {
        let workspace = try Context(common).workspace(requireInitialized: false)
        let input = String(decoding: FileHandle.standardInput.readDataToEndOfFile(), as: UTF8.self)
        let updates = try PushUpdate.parse(input)
        let verdict = try PromotionCheck(repository: workspace.repository).prePush(remote: remote, updates: updates)
        guard !verdict.blocked.isEmpty else { return 0 }
        reportBlocked(verdict.blocked)
        throw GateError.blocked(count: verdict.blocked.count)
    }
}

/// Prints each blocked promotion: what, why, and the command that fixes it.
func reportBlocked(_ blocked: [BlockedPromotion]) {
    for item in blocked {
        printError("blocked: \(item.model) \(item.version) -> \(item.stage) (\(item.event))")
        for reason in item.reasons { printError("  - \(reason)") }
        printError("  fix: \(item.fix)")
    }
}
