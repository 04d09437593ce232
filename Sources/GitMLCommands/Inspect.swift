import ArgumentParser
import GitMLBasics
import GitMLGates
import GitMLGit
import GitMLLineage
import GitMLRegistry
import GitMLRemote
import GitMLStore

struct Log: GitMLCommand {
    static let configuration = CommandConfiguration(
        abstract: "List recorded runs, newest first.",
        discussion: """
            --where takes comparisons joined by `and`, over metrics.<name>, params.<name>, kind, status, \
            created, seed, git.branch, git.commit, git.dirty. --sort takes a field, - in front for descending.

            Example: git ml log --where 'metrics.acc > 0.9' --sort -metrics.acc --limit 5
            """)

    @OptionGroup var common: CommonOptions
    @OptionGroup var output: OutputOptions
    @Option(
        name: .customLong("where"),
        help: ArgumentHelp("A filter, e.g. \"metrics.acc > 0.9 and params.lr = 0.01\".", valueName: "expr"))
    var filter: String?
    @Option(parsing: .unconditional, help: ArgumentHelp("Sort by a field (-field for descending).", valueName: "field"))
    var sort: String?
    @Option(help: "Show at most this many runs.")
    var limit: Int?
    var wantsJSON: Bool { output.json }

    func execute() throws -> Int32 {
        let context = try Context(common, json: output.json)
        let workspace = try context.workspace()
        let query = try RunQuery(where: filter)
        if let limit, limit < 0 {
            throw LineageError.badArgument("--limit must not be negative", hint: "for example --limit 10")
        }
        var runs = RunQuery.sort(try RunIndex(workspace: workspace).runs(matching: query), by: sort)
        if let limit { runs = Array(runs.prefix(limit)) }
        if output.json {
            print(JSONWriter.pretty(.object(["format": .int(1), "runs": .array(runs.map(\.json))])), terminator: "")
            return 0
        }
        if runs.isEmpty {
            print(
                filter == nil
                    ? "no runs yet: record one with git ml run -- <command> or git ml snapshot" : "no run matches")
            return 0
        }
        var rows = [["RUN", "CREATED", "KIND", "STATUS", "COMMIT", "METRICS", "PARAMS"]]
        for run in runs {
            let json = run.json
            let hash: String = json["git"]?["commit"]?.string.map { String($0.prefix(8)) } ?? "-"
            let dirty: Bool = json["git"]?["dirty"]?.bool == true
            let commit = dirty ? hash + "+" : hash
            let metrics = (json["metrics"]?.object ?? [:]).sorted { $0.key < $1.key }.map {
                "\($0.key)=\(formatNumber($0.value))"
            }
            let params = (json["params"]?.object ?? [:]).sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }
            let id: String = context.paint(String(run.id.prefix(12)), "33")
            let created: String = String(run.created.prefix(19)).replacingAll("T", with: " ")
            let kind: String = json["kind"]?.string ?? ""
            let status: String = json["status"]?.string ?? ""
            rows.append([
                id, created, kind, status, commit, metrics.joined(separator: " "), params.joined(separator: " "),
            ])
        }
        print(table(rows))
        return 0
    }
}

struct Show: GitMLCommand {
    static let configuration = CommandConfiguration(
        abstract: "Show one run record.",
        discussion:
            "The id may be abbreviated to 4 or more hex digits.\n\nExample: git ml show 3fa2c1 --json | jq .metrics")

    @OptionGroup var common: CommonOptions
    @OptionGroup var output: OutputOptions
    @Argument(help: "A run id or unique prefix (default: the newest run).")
    var run: String?
    var wantsJSON: Bool { output.json }

    func execute() throws -> Int32 {
        let workspace = try Context(common, json: output.json).workspace()
        let store = RunStore(workspace: workspace)
        let stored = try store.read(try run.map(store.resolve) ?? store.latest())
        if output.json {
            guard case .object(var members) = stored.record else { return 2 }
            members["id"] = .string(stored.id)
            print(JSONWriter.pretty(.object(members)), terminator: "")
            return 0
        }
        let r = stored.record
        var lines = ["\(stored.kind) \(stored.id)", "created   \(stored.created)", "status    \(stored.status)"]
        if let owner = r["owner"], owner != .null {
            lines.append("owner     \(owner["name"]?.string ?? "") <\(owner["email"]?.string ?? "")>")
        }
        lines.append(
            "commit    \(r["git"]?["commit"]?.string ?? "(none)") on \(r["git"]?["branch"]?.string ?? "(detached)")"
                + (r["git"]?["dirty"]?.bool == true
                    ? " + uncommitted changes (patch \(r["git"]?["patch"]?.string?.prefix(12) ?? ""))" : ""))
        if let command = r["command"] {
            lines.append("command   \(command["argv"]?.array?.map(\.description).joined(separator: " ") ?? "")")
            lines.append(
                "exit      \(command["exit_status"].map { $0 == .null ? "signal \(command["signal"]?.description ?? "?")" : $0.description } ?? "") after \(command["duration_seconds"]?.description ?? "?") s, peak memory \(command["peak_memory_bytes"]?.number.map { NumberText.format($0 / 1_048_576) + " MiB" } ?? "?")"
            )
        }
        if let seed = r["seed"]?["value"] { lines.append("seed      \(seed) (\(r["seed"]?["source"]?.string ?? ""))") }
        func section(_ title: String, _ values: [String: JSONValue], number: Bool) {
            guard !values.isEmpty else { return }
            lines.append("\(title):")
            for (key, value) in values.sorted(by: { $0.key < $1.key }) {
                lines.append("  \(key) = \(number ? formatNumber(value) : value.description)")
            }
        }
        section("params", stored.params, number: false)
        section("metrics", stored.metrics, number: true)
        for (title, items) in [("data", stored.data), ("artifacts", stored.artifacts)] where !items.isEmpty {
            lines.append("\(title):")
            for item in items {
                let digest = item["sha256"]?.string ?? "missing"
                lines.append(
                    "  \(item["path"]?.string ?? "")  sha256:\(digest)  \(item["size"]?.description ?? "") bytes, \(item["files"]?.description ?? "1") files"
                )
            }
        }
        let env = r["environment"]
        lines.append("environment:")
        lines.append(
            "  os      \(env?["os"]?["name"]?.string ?? "") (kernel \(env?["os"]?["kernel"]?.string ?? ""), \(env?["os"]?["arch"]?.string ?? ""))"
        )
        lines.append("  cpu     \(env?["cpu"]?["model"]?.string ?? "") x\(env?["cpu"]?["count"]?.description ?? "")")
        if let python = env?["python"], python != .null {
            lines.append(
                "  python  \(python["version"]?.string ?? "") (\(python["packages"]?.object?.count ?? 0) packages)")
        }
        print(lines.joined(separator: "\n"))
        return 0
    }
}

struct Diff: GitMLCommand {
    static let configuration = CommandConfiguration(
        abstract: "Compare two runs: params, metrics, seeds, data, artifacts, git and environment.",
        discussion: "Example: git ml diff 3fa2c1 7be04d")

    @OptionGroup var common: CommonOptions
    @OptionGroup var output: OutputOptions
    @Flag(help: "Show only what differs.")
    var changed = false
    @Argument(help: "The first run.") var first: String
    @Argument(help: "The second run.") var second: String
    var wantsJSON: Bool { output.json }

    func execute() throws -> Int32 {
        let context = try Context(common, json: output.json)
        let store = RunStore(workspace: try context.workspace())
        let a = try store.read(try store.resolve(first))
        let b = try store.read(try store.resolve(second))
        let rows = RunDiff.compare(a, b).filter { !changed || $0.changed }
        if output.json {
            print(
                JSONWriter.pretty(
                    .object([
                        "format": .int(1), "a": .string(a.id), "b": .string(b.id), "rows": .array(rows.map(\.json)),
                    ])), terminator: "")
            return 0
        }
        var cells = [["", "", String(a.id.prefix(12)), String(b.id.prefix(12)), "DELTA"]]
        for row in rows {
            func show(_ v: JSONValue?) -> String {
                guard let v else { return "-" }
                if let s = v.string, SHA256.isDigest(s) { return String(s.prefix(12)) }
                return row.section == "metrics" ? formatNumber(v) : v.description
            }
            let delta =
                row.delta.map { (d: Double) in (d > 0 ? "+" : "") + formatNumber(.double(d)) }
                ?? (row.changed ? "changed" : "")
            let line = [row.section, row.key, show(row.a), show(row.b), delta]
            cells.append(row.changed ? line.map { context.paint($0, "1") } : line)
        }
        print(table(cells))
        return 0
    }
}

struct Verify: GitMLCommand {
    static let configuration = CommandConfiguration(
        abstract: "Re-hash a run's data and artifacts and compare them with its record.",
        discussion: """
            Reads every byte again (no stat cache). Exits 1 when a record was modified or a file \
            differs, naming each file; 0 when everything matches.

            With --range A..B it runs the pre-push hook's check instead, for CI where --no-verify cannot skip \
            it: every promotion to staging or production that B adds over A is judged again under A's gates, \
            approvers and allowed_signers, and must match its recorded gate evidence; registry files A has may not \
            change or disappear (docs/ci.md, docs/trust.md).

            Example: git ml verify 3fa2c1
            Example: git ml verify --range origin/main..HEAD
            """)

    @OptionGroup var common: CommonOptions
    @OptionGroup var output: OutputOptions
    @Argument(help: "Runs to verify (default: the newest run).")
    var runs: [String] = []
    @Option(
        help: ArgumentHelp(
            "Check the promotions the commits in A..B add, as the pre-push hook does.", valueName: "A..B"))
    var range: String?
    var wantsJSON: Bool { output.json }

    func execute() throws -> Int32 {
        let context = try Context(common, json: output.json)
        if let range { return try verifyRange(range, context: context) }
        let workspace = try context.workspace()
        let store = RunStore(workspace: workspace)
        let ids = runs.isEmpty ? [try store.latest()] : try runs.map(store.resolve)
        let verifier = Verifier(workspace: workspace, progress: context.progress)
        var all: [(String, [Finding])] = []
        // A missing artifact that a configured remote holds is said to be there (git ml pull fetches it).
        let remote =
            try workspace.config.get().defaultRemote == nil
            ? nil : try? RemoteSync(workspace: workspace, remote: nil, credentials: CredentialSource())
        for id in ids {
            let findings = try verifier.verify(id)
            all.append((id, remote?.annotate(findings) ?? findings))
        }
        let failed = all.contains { $0.1.contains(where: \.isProblem) }
        if output.json {
            let value: JSONValue = .object([
                "format": .int(1), "ok": .bool(!failed),
                "runs": .array(all.map { .object(["id": .string($0.0), "findings": .array($0.1.map(\.json))]) }),
            ])
            print(JSONWriter.pretty(value), terminator: "")
        } else {
            for (id, findings) in all {
                print("run \(id.prefix(12)):")
                for finding in findings {
                    let state =
                        finding.isProblem ? context.paint(finding.state, "31") : context.paint(finding.state, "32")
                    let detail =
                        finding.detail.hasPrefix(finding.subject)
                        ? String(finding.detail.dropFirst(finding.subject.count)) : ": " + finding.detail
                    print("  \(state)  \(finding.subject)" + (finding.isProblem ? detail : ""))
                }
            }
            if failed { printError("verify: some files differ from the record; restore them or record a new run") }
        }
        return failed ? ExitStatus.checkFailed : 0
    }

    private func verifyRange(_ range: String, context: Context) throws -> Int32 {
        let workspace = try context.workspace(requireInitialized: false)
        let result = try promotionCheck(workspace).check(
            try PromotionCheck.Range(parsing: range, in: workspace.repository))
        if output.json {
            print(
                JSONWriter.pretty(
                    .object([
                        "format": .int(1), "range": .string(range), "ok": .bool(result.blocked.isEmpty),
                        "promotions": .int(Int64(result.promotions)), "policy": .string(result.policy),
                        "blocked": .array(result.blocked.map(\.json)),
                    ])), terminator: "")
        } else {
            if !result.blocked.isEmpty { reportBlocked(result.blocked, policy: result.policy) }
            if result.blocked.isEmpty {
                print(
                    "\(range): \(result.promotions) promotion\(result.promotions == 1 ? "" : "s"), each passing its gates "
                        + "under the policy of \(result.policy)")
            }
        }
        return result.blocked.isEmpty ? 0 : ExitStatus.checkFailed
    }
}

struct Fsck: GitMLCommand {
    static let configuration = CommandConfiguration(
        commandName: "fsck",
        abstract:
            "Check every record, manifest, patch, stored object and registry file against its name, schema and references.",
        discussion: "Exits 1 when anything is corrupt, malformed or dangling.\n\nExample: git ml fsck")

    @OptionGroup var common: CommonOptions
    @OptionGroup var output: OutputOptions
    var wantsJSON: Bool { output.json }

    func execute() throws -> Int32 {
        let context = try Context(common, json: output.json)
        let workspace = try context.workspace()
        let (lineage, runsChecked) = try GitMLLineage.Fsck(workspace: workspace).check()
        let (registry, registryChecked) = try RegistryFsck(workspace: workspace).check()
        let (problems, checked) = (lineage + registry, runsChecked + registryChecked)
        if output.json {
            print(
                JSONWriter.pretty(
                    .object([
                        "format": .int(1), "checked": .int(Int64(checked)), "ok": .bool(problems.isEmpty),
                        "problems": .array(problems.map(\.json)),
                    ])), terminator: "")
        } else {
            for problem in problems { print("\(context.paint(problem.state, "31"))  \(problem.detail)") }
            print(
                problems.isEmpty
                    ? "fsck: \(checked) files checked, no problems"
                    : "fsck: \(problems.count) problem\(problems.count == 1 ? "" : "s") in \(checked) files")
        }
        return problems.isEmpty ? 0 : ExitStatus.checkFailed
    }
}
