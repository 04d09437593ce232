import ArgumentParser
import Foundation
import GitMLBasics
import GitMLLineage
import GitMLRegistry
import GitMLRemote

/// `git ml remote`: the OCI registries artifacts are pushed to and pulled from.
struct RemoteCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "remote",
        abstract: "Manage the OCI registries that artifacts are pushed to and pulled from.",
        discussion: """
            A remote is an OCI repository (Harbor, GHCR, ECR, GAR, ACR, Artifactory, the CNCF distribution \
            server). Its URL goes into .mlops/config.yaml; credentials never do: they come from docker login \
            (~/.docker/config.json and its credential helpers) or git's credential helper.

            Examples:
              git ml remote add origin oci://ghcr.io/team/churn
              git ml remote add local oci://127.0.0.1:5000/team/churn --insecure-http
              git ml remote ls
              git ml remote status --json
            """,
        subcommands: [RemoteAdd.self, RemoteList.self, RemoteStatusCommand.self])
}

struct RemoteAdd: GitMLCommand {
    static let configuration = CommandConfiguration(
        commandName: "add", abstract: "Add a remote to .mlops/config.yaml (commit it to share it).")

    @OptionGroup var common: CommonOptions
    @Argument(help: "Its name, like origin.") var name: String
    @Argument(help: ArgumentHelp("oci://<host>[:port]/<repository>.", valueName: "url")) var url: String
    @Flag(help: "Speak plain HTTP, not HTTPS (a registry on loopback or a private network).") var insecureHttp = false

    func execute() throws -> Int32 {
        let workspace = try Context(common).workspace()
        try Remotes.add(name: name, url: url, insecure: insecureHttp, workspace: workspace)
        print("added remote \(name): \(url)\(insecureHttp ? " (plain HTTP)" : "")")
        printError("hint: commit .mlops/config.yaml to share it; push artifacts with git ml push \(name)")
        return 0
    }
}

struct RemoteList: GitMLCommand {
    static let configuration = CommandConfiguration(commandName: "ls", abstract: "List the remotes.")

    @OptionGroup var common: CommonOptions
    @OptionGroup var output: OutputOptions
    var wantsJSON: Bool { output.json }

    func execute() throws -> Int32 {
        let config = try Context(common, json: output.json).workspace().config.get()
        let names = config.remotes.keys.sorted()
        if output.json {
            print(
                JSONWriter.pretty(
                    .object([
                        "remotes": .array(
                            names.map { name in
                                let remote = config.remotes[name] ?? .init(url: "", insecureHTTP: false)
                                return .object([
                                    "name": .string(name), "url": .string(remote.url),
                                    "insecure_http": .bool(remote.insecureHTTP),
                                    "default": .bool(name == config.defaultRemote),
                                ])
                            }),
                        "push_on_git_push": .bool(config.pushOnGitPush),
                    ])), terminator: "")
        } else if names.isEmpty {
            printError("no remotes; add one: git ml remote add origin oci://<host>/<repository>")
        } else {
            for name in names {
                let remote = config.remotes[name] ?? .init(url: "", insecureHTTP: false)
                let marks = [name == config.defaultRemote ? "default" : nil, remote.insecureHTTP ? "plain HTTP" : nil]
                    .compactMap { $0 }
                print("\(name)\t\(remote.url)" + (marks.isEmpty ? "" : "\t(\(marks.joined(separator: ", ")))"))
            }
        }
        return 0
    }
}

struct RemoteStatusCommand: GitMLCommand {
    static let configuration = CommandConfiguration(
        commandName: "status",
        abstract: "For each model version (and run), whether its artifacts are here and on the remote.")

    @OptionGroup var common: CommonOptions
    @OptionGroup var output: OutputOptions
    @Argument(help: "The remote (default: origin, or the only one).") var remote: String?
    @Flag(help: "Runs with stored artifacts too, not only model versions.") var all = false
    var wantsJSON: Bool { output.json }

    func execute() throws -> Int32 {
        let workspace = try Context(common, json: output.json).workspace()
        let sync = try RemoteSync(workspace: workspace, remote: remote, credentials: CredentialSource())
        let rows = try sync.status(try sync.packages([], all: all))
        if output.json {
            print(
                JSONWriter.pretty(
                    .object(["remote": .string(sync.remoteName), "packages": .array(rows.map(\.json))])),
                terminator: "")
            return 0
        }
        if rows.isEmpty { printError("nothing to compare: no model versions yet") }
        for row in rows {
            let state =
                switch (row.local, row.remote) {
                case (true, true): "local, remote"
                case (true, false): "local only (git ml push)"
                case (false, true): "remote only (git ml pull \(row.title))"
                case (false, false): "missing: \(row.missingLocally) object(s) here and no copy on \(sync.remoteName)"
                }
            print("\(row.title)\t\(state)")
        }
        return 0
    }
}

/// `remote` first when it names a configured remote (as `git push origin main`), then the targets. A first word
/// that is neither a remote nor a target (no @, not a model, not a run id) among several is a mistyped remote.
func splitRemote(_ words: [String], workspace: Workspace) throws -> (String?, [String]) {
    guard let first = words.first else { return (nil, []) }
    let config = try workspace.config.get()
    if config.remotes[first] != nil { return (first, Array(words.dropFirst())) }
    let models = (try? Registry(source: WorkTreeSource(workspace: workspace)).modelNames()) ?? []
    if words.count > 1, !first.contains("@"), !models.contains(first),
        !first.allSatisfy({ $0.isHexDigit }) || first.count < 4
    {
        throw RemoteError.unknownRemote(first, known: config.remotes.keys.sorted())
    }
    return (nil, words)
}

func printTransfers(_ reports: [TransferReport], remote: String, verb: String, json: Bool) {
    if json {
        print(
            JSONWriter.pretty(.object(["remote": .string(remote), "packages": .array(reports.map(\.json))])),
            terminator: "")
        return
    }
    let mib = { (n: Int64) in String(format: "%.1f MiB", Double(n) / 1_048_576) }
    for report in reports {
        switch report.state {
        case "up to date", "present": print("\(report.title): \(report.state)")
        default:
            var parts = ["\(report.sent) blob(s) \(verb) (\(mib(report.bytes)))"]
            if report.skipped > 0 { parts.append("\(report.skipped) already there") }
            if report.mounted > 0 { parts.append("\(report.mounted) mounted") }
            print("\(report.title): \(report.state) \(report.tag), " + parts.joined(separator: ", "))
        }
    }
}

struct PushCommand: GitMLCommand {
    static let configuration = CommandConfiguration(
        commandName: "push",
        abstract: "Upload model versions (and runs) to a remote OCI registry, sending only what it lacks.",
        discussion: """
            Each model version becomes one CNCF ModelPack manifest tagged <model>-v<N>: its artifacts as raw \
            layers (the layer digest is the artifact's sha256), its run record and version file as git-ml \
            layers. A run pushed on its own is tagged run-<id>. What the registry has is skipped (HEAD), a blob \
            in another repository of the same registry is mounted, and a version already pushed sends nothing.

            Examples:
              git ml push                 # every model version, to origin
              git ml push origin churn@3
              git ml push --all           # versions and every run with stored artifacts
            """)

    @OptionGroup var common: CommonOptions
    @OptionGroup var output: OutputOptions
    @Argument(help: "[<remote>] then <model>@<version|stage>, <model>, or a run id; none: every version.")
    var targets: [String] = []
    @Flag(help: "Runs with stored artifacts too, not only model versions.") var all = false
    @Flag(help: "Replace a tag the remote holds for another lineage's version of the same number.") var force = false
    var wantsJSON: Bool { output.json }

    func execute() throws -> Int32 {
        let context = try Context(common, json: output.json)
        let workspace = try context.workspace()
        let (remote, targets) = try splitRemote(targets, workspace: workspace)
        let sync = try RemoteSync(workspace: workspace, remote: remote, credentials: CredentialSource())
        sync.progress = context.progress
        let packages = try sync.packages(targets, all: all)
        if packages.isEmpty && !output.json { printError("nothing to push: no model versions yet") }
        if !output.json { printError("pushing to \(sync.remoteName) (\(sync.session.reference.url))") }
        printTransfers(
            try sync.push(packages, force: force), remote: sync.remoteName, verb: "sent", json: output.json)
        return 0
    }
}

struct PullCommand: GitMLCommand {
    static let configuration = CommandConfiguration(
        commandName: "pull",
        abstract: "Fetch the artifacts of model versions or runs from a remote, every byte re-hashed.",
        discussion: """
            Only objects missing from .mlops/cache/objects are fetched. Each is streamed to a temporary file, \
            hashed as it arrives and renamed into place only when its sha256 is the recorded one; the remote's \
            manifest must list every artifact with the digest and size the version file records.

            Examples:
              git ml pull churn@production
              git ml pull origin churn@3
              git ml pull 95af1af3          # a run's artifacts
            """)

    @OptionGroup var common: CommonOptions
    @OptionGroup var output: OutputOptions
    @Argument(help: "[<remote>] then <model>@<version|stage>, <model>, or a run id.") var targets: [String] = []
    @Flag(help: "Every model version.") var all = false
    var wantsJSON: Bool { output.json }

    func validate() throws {
        if targets.isEmpty && !all {
            throw ValidationError("name what to pull (git ml pull churn@production), or pass --all")
        }
    }

    func execute() throws -> Int32 {
        let context = try Context(common, json: output.json)
        let workspace = try context.workspace()
        let (remote, targets) = try splitRemote(targets, workspace: workspace)
        if targets.isEmpty && !all {
            throw ValidationError(
                "name what to pull from \(remote ?? "the remote") (git ml pull churn@production), or pass --all")
        }
        let sync = try RemoteSync(workspace: workspace, remote: remote, credentials: CredentialSource())
        sync.progress = context.progress
        printTransfers(
            try sync.pull(try sync.packages(targets, all: false)), remote: sync.remoteName, verb: "fetched",
            json: output.json)
        return 0
    }
}
