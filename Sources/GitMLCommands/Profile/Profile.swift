import ArgumentParser
import GitMLBasics
import GitMLLineage

struct ProfileCommand: GitMLCommand {
    static let configuration = CommandConfiguration(
        commandName: "profile",
        abstract: "Summarize a CSV or JSON-lines table for drift detection, in one streaming pass.",
        discussion: """
            Writes .mlops/profiles/<sha256>.json: per column its type, counts, missing values, and for numbers \
            min, max, mean, std, a KLL quantile sketch (rank error 1.33 %) and a 20-bin histogram; for \
            categories the most frequent values and an "other" bucket. Memory stays bounded whatever the file's \
            size. Types come from the first 1,000 rows unless --categorical names a column. The same table gives \
            the same profile. Also: git ml run/snapshot --profile <file>.

            Example: git ml profile data/train.csv --target churned --categorical country,plan
            """)

    @OptionGroup var common: CommonOptions
    @OptionGroup var output: OutputOptions
    @Argument(help: "A .csv, .jsonl or .ndjson file inside the repository.") var file: String
    @Option(help: "The profile's name (default: the file name).") var name: String?
    @Option(help: "The target column.") var target: String?
    @Option(help: ArgumentHelp("Columns to treat as categories, comma-separated.", valueName: "a,b")) var categorical:
        String?
    var wantsJSON: Bool { output.json }

    func execute() throws -> Int32 {
        let context = try Context(common, json: output.json)
        let workspace = try context.workspace()
        let forced = Set(
            (categorical ?? "").split(separator: ",").map { String($0).trimmingCharacters(in: .whitespaces) }.filter {
                !$0.isEmpty
            })
        let (id, profile) = try ProfileStore(workspace: workspace).profile(
            file, name: name, categorical: forced, target: target)
        if output.json {
            print(
                JSONWriter.pretty(
                    .object([
                        "format": .int(1), "id": .string(id),
                        "profile": ProfileStore.reference(id: id, profile: profile),
                    ])), terminator: "")
            return 0
        }
        print(
            "profiled \(profile.source): \(profile.rows) rows, \(profile.columns.count) columns -> .mlops/profiles/\(id.prefix(12)).json"
        )
        var rows = [["COLUMN", "TYPE", "MISSING", "SUMMARY"]]
        for column in profile.columns {
            let summary: String
            if column.type == "numeric" {
                summary =
                    "min \(formatNumber(.double(column.min))), median \(column.sketch.quantile(0.5).map { formatNumber(.double($0)) } ?? "-"), max \(formatNumber(.double(column.max)))"
                    + (column.invalid > 0 ? ", \(column.invalid) not numbers" : "")
            } else {
                let (values, _) = column.frequencies.top(3)
                summary = values.map { "\($0.0.replacingOccurrences(of: "\n", with: "\\n")) (\($0.1))" }.joined(
                    separator: ", ")
            }
            rows.append([column.name, column.type, String(column.missing), summary])
        }
        print(table(rows))
        return 0
    }
}
