import ArgumentParser
import GitMLBasics
import GitMLGates
import GitMLRegistry
import GitMLServe

struct GateCheckCommand: GitMLCommand {
    static let configuration = CommandConfiguration(
        commandName: "check",
        abstract: "Evaluate the gates of .mlops/gates.yaml for a version and record the evidence.",
        discussion: """
            Prints one row per check (observed value, threshold, pass or fail) and writes the result as an event \
            under .mlops/models/<name>/events/, which the pre-push hook and `git ml verify --range` look for. \
            Exit 0 only when every check passes; an unknown metric, a malformed gates file or a version whose run \
            record is missing fails the gate (exit 1).

            Example: git ml gate check churn 3 --to production
            """)

    @OptionGroup var common: CommonOptions
    @OptionGroup var output: OutputOptions
    @Argument(help: "The model (or model@version).") var model: String
    @Argument(help: "The version (default: the latest).") var version: String?
    @Option(help: ArgumentHelp("The stage the version is to enter (default: the next one up).", valueName: "stage"))
    var to: Stage?
    var wantsJSON: Bool { output.json }

    func execute() throws -> Int32 {
        let context = try Context(common, json: output.json)
        let workspace = try context.workspace()
        let reference = ModelReference(model, version: version)
        let outcome = try GateRunner(
            workspace: workspace, cardExaminer: cardExaminer,
            probeExaminer: Gateway.probeExaminer(workspace: workspace, cardExaminer: cardExaminer)
        ).check(reference.name, version: reference.reference ?? "latest", stage: to)
        if output.json {
            print(
                JSONWriter.pretty(
                    .object([
                        "format": .int(1), "model": .string(outcome.model), "version": .int(Int64(outcome.version)),
                        "stage": .string(outcome.stage.rawValue), "passed": .bool(outcome.passed),
                        "checks": .array(outcome.rows.map(\.json)), "evidence": .string(outcome.evidence.id),
                    ])), terminator: "")
        } else {
            var rows = [["CHECK", "OBSERVED", "THRESHOLD", "RESULT", "DETAIL"]]
            for row in outcome.rows {
                rows.append([
                    row.check, row.observed, row.threshold,
                    row.passed
                        ? (row.warning ? context.paint("warn", "33") : context.paint("pass", "32"))
                        : context.paint("FAIL", "31"), row.detail,
                ])
            }
            print(table(rows))
            let verdict = outcome.passed ? "passed" : "failed"
            print(
                "gates for \(outcome.model) \(outcome.version) -> \(outcome.stage.rawValue): \(verdict); evidence \(outcome.evidence.id)"
            )
            if outcome.passed {
                print(
                    "next: git ml model promote \(outcome.model) \(outcome.version) --to \(outcome.stage.rawValue), then commit .mlops"
                )
            }
        }
        return outcome.passed ? 0 : ExitStatus.checkFailed
    }
}
