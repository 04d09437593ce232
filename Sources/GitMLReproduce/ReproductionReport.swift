import Foundation
import GitMLBasics
import GitMLLineage
import GitMLMarkdown
import GitMLStore

/// The Markdown report of a reproduction: the verdict first, then every table behind it.
public enum ReproductionReport {
    public static func markdown(_ r: Reproduction) -> String {
        let cell = Markdown.escape
        func number(_ value: Double?) -> String { value.map { NumberText.format($0, significant: 8) } ?? "-" }
        var lines = ["# Reproduction of run \(r.original.id.prefix(12))", ""]
        lines.append("**Verdict: \(r.verdict.rawValue)**" + (r.reason.isEmpty ? "" : ": " + cell(r.reason)))
        lines += ["", "| | |", "|---|---|", "| Run | \(r.original.id) |", "| Commit | \(r.commit) |"]
        lines.append(
            "| Patch | \(r.patchApplied ? "the recorded uncommitted changes were applied" : "none (clean tree)") |")
        if !r.omittedFromPatch.isEmpty {
            lines.append("| Not in the patch | \(cell(r.omittedFromPatch.joined(separator: ", "))) |")
        }
        if !r.differsFromRun.isEmpty {
            lines.append("| Restored tree differs at | \(cell(r.differsFromRun.joined(separator: ", "))) |")
        }
        let argv = r.original.record["command"]?["argv"]?.array?.map(\.description).joined(separator: " ") ?? ""
        lines.append("| Command | \(cell(argv)) |")
        lines.append("| Seed | \(r.original.record["seed"]?["value"]?.description ?? "not recorded") |")
        if let newRun = r.newRun { lines.append("| New run | \(newRun) |") }
        if let status = r.exitStatus { lines.append("| Exit status | \(status) |") }
        if let worktree = r.worktree { lines.append("| Work tree (kept) | \(cell(worktree)) |") }
        lines += ["", "## Data", "", "| path | state | recorded | now |", "|---|---|---|---|"]
        for finding in r.data {
            lines.append(
                "| \(cell(finding.subject)) | \(finding.state) | \(finding.recorded.map { String($0.prefix(12)) } ?? "-") | \(finding.actual.map { String($0.prefix(12)) } ?? "-") |"
            )
        }
        if r.data.isEmpty { lines.append("| (no data recorded) | | | |") }
        lines += ["", "## Environment", ""]
        if r.environment.isEmpty {
            lines.append("No difference from the recorded environment.")
        } else {
            lines += ["| item | recorded | now |", "|---|---|---|"]
            lines += r.environment.map { "| \(cell($0.item)) | \(cell($0.recorded)) | \(cell($0.now)) |" }
        }
        lines += ["", "## Metrics", ""]
        if r.metrics.isEmpty {
            lines.append(
                r.newRun == nil ? "Not compared: the command did not complete." : "The run recorded no metrics.")
        } else {
            lines += ["| metric | recorded | now | difference | tolerance | result |", "|---|---|---|---|---|---|"]
            lines += r.metrics.map {
                "| \(cell($0.name)) | \(number($0.recorded)) | \(number($0.now)) | \(number($0.difference)) | \(number($0.tolerance)) | \($0.outcome) |"
            }
        }
        lines += ["", "## Artifacts", ""]
        if r.artifacts.isEmpty {
            lines.append(
                r.newRun == nil ? "Not compared: the command did not complete." : "The run recorded no artifacts.")
        } else {
            lines += ["| path | recorded | now | result |", "|---|---|---|---|"]
            lines += r.artifacts.map {
                "| \(cell($0.path)) | \($0.recorded.prefix(12)) | \($0.now.map { String($0.prefix(12)) } ?? "missing") | \($0.equal ? "equal" : "differ") |"
            }
        }
        if !r.stderrTail.isEmpty {
            lines += [
                "", "## The command's last output (stderr)", "", "```text",
                r.stderrTail.replacingOccurrences(of: "```", with: "'''"), "```",
            ]
        }
        return lines.joined(separator: "\n") + "\n"
    }

    /// The report as `--json` prints it.
    public static func json(_ r: Reproduction) -> JSONValue {
        func number(_ value: Double?) -> JSONValue { value.map { .double($0) } ?? .null }
        return .object([
            "format": .int(1), "verdict": .string(r.verdict.rawValue), "reason": .string(r.reason),
            "run": .string(r.original.id),
            "commit": .string(r.commit), "patch_applied": .bool(r.patchApplied),
            "differs_from_run": .array(r.differsFromRun.map(JSONValue.string)),
            "new_run": r.newRun.map(JSONValue.string) ?? .null,
            "exit_status": r.exitStatus.map { .int(Int64($0)) } ?? .null,
            "data": .array(r.data.map(\.json)),
            "environment": .array(
                r.environment.map {
                    .object(["item": .string($0.item), "recorded": .string($0.recorded), "now": .string($0.now)])
                }),
            "metrics": .array(
                r.metrics.map {
                    .object([
                        "name": .string($0.name), "recorded": number($0.recorded), "now": number($0.now),
                        "tolerance": .double($0.tolerance), "result": .string($0.outcome),
                    ])
                }),
            "artifacts": .array(
                r.artifacts.map {
                    .object([
                        "path": .string($0.path), "recorded": .string($0.recorded),
                        "now": $0.now.map(JSONValue.string) ?? .null, "equal": .bool($0.equal),
                    ])
                }),
            "stderr_tail": .string(r.stderrTail), "worktree": r.worktree.map(JSONValue.string) ?? .null,
            "seconds": .object([
                "setup": .double((r.seconds.setup * 1000).rounded() / 1000),
                "command": .double((r.seconds.command * 1000).rounded() / 1000),
                "compare": .double((r.seconds.compare * 1000).rounded() / 1000),
            ]),
            "command_seconds": .double((r.seconds.command * 1000).rounded() / 1000),
        ])
    }
}

extension Reproducer {
    /// Writes the report as Markdown and HTML where the user asked (anywhere they can write; inside the work tree
    /// never through a link leading out), else under `.git/git-ml/reports/`, and the reproduced run's record beside
    /// it. Returns the Markdown report's path.
    public func writeReport(_ result: Reproduction, id: String, markdown: String, html: String, to userPath: String?)
        throws -> String
    {
        let markdownPath =
            userPath
            ?? "\(workspace.repository.commonDirectory)/git-ml/reports/\(id.prefix(12))-\(Timestamp.now().filter(\.isNumber)).md"
        let stem = markdownPath.hasSuffix(".md") ? String(markdownPath.dropLast(3)) : markdownPath
        try workspace.writeOutput(Array(markdown.utf8), to: markdownPath)
        try workspace.writeOutput(Array(html.utf8), to: stem + ".html")
        if let record = result.newRecord, let newRun = result.newRun {
            try workspace.writeOutput(record, to: AtomicFile.parent(of: stem + ".md") + "/\(newRun).json")
        }
        return workspace.inputPath(markdownPath)
    }
}
