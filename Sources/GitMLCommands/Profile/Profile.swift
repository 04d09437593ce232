import ArgumentParser
import GitMLBasics
import GitMLLineage

struct ProfileCommand: GitMLCommand {
    static let configuration = CommandConfiguration(
        commandName: "profile",
        abstract: "Summarize a CSV or JSON-lines table for drift detection, in one streaming pass.",
        discussion: """
            Writes .mlops/profiles/<sha256>.json: per column its type, counts, missing values, and for numbers \
            min, max, mean, std, a KLL quantile sketch (Apache DataSketches' format, rank error 0.2 %) and a \
            20-bin histogram; for \
            categories the most frequent values and an "other" bucket. Memory stays bounded whatever the file's \
            size. Types come from the first 1,000 rows unless --categorical names a column. The same table gives \
            the same profile. Also: git ml run/snapshot --profile <file>.

            --merge combines profiles of parts of one table (files from other machines, or ids) into the profile \
            of the whole: counts add, sketches and frequency tables merge.

            Examples:
              git ml profile data/train.csv --target churned --categorical country,plan
              git ml profile --merge part-1.json part-2.json 3fa2c1
            """)

    @OptionGroup var common: CommonOptions
    @OptionGroup var output: OutputOptions
    @Argument(help: "A .csv, .jsonl or .ndjson file inside the repository; with --merge, profiles (files or ids).")
    var files: [String] = []
    @Flag(help: "Merge profiles of parts of one table (files, or ids under .mlops/profiles) into one.") var merge =
        false
    @Option(help: "The profile's name (default: the file name).") var name: String?
    @Option(help: "The target column.") var target: String?
    @Option(help: ArgumentHelp("Columns to treat as categories, comma-separated.", valueName: "a,b")) var categorical:
        String?
    var wantsJSON: Bool { output.json }

    func validate() throws {
        if merge {
            guard files.count >= 2 else { throw ValidationError("--merge needs two or more profiles to merge") }
            guard target == nil && categorical == nil else {
                throw ValidationError("--target and --categorical apply when profiling a data file, not to --merge")
            }
        } else if files.count != 1 {
            throw ValidationError(
                files.isEmpty
                    ? "name the data file to profile: git ml profile data/train.csv"
                    : "profile one file at a time, or merge profiles with --merge")
        }
    }

    func execute() throws -> Int32 {
        let context = try Context(common, json: output.json)
        let workspace = try context.workspace()
        let forced = Set(
            (categorical ?? "").split(separator: ",").map { String($0).trimmingCharacters(in: .whitespaces) }.filter {
                !$0.isEmpty
            })
        let store = ProfileStore(workspace: workspace)
        let (id, profile) =
            merge
            ? try store.merge(files, name: name)
            : try store.profile(files[0], name: name, categorical: forced, target: target)
        let size = profile.bytes.count
        if output.json {
            print(
                JSONWriter.pretty(
                    .object([
                        "format": .int(1), "id": .string(id), "bytes": .int(Int64(size)),
                        "profile": ProfileStore.reference(id: id, profile: profile),
                    ])), terminator: "")
            return 0
        }
        print(
            "\(merge ? "merged" : "profiled") \(profile.source): \(profile.rows) rows, \(profile.columns.count) columns -> .mlops/profiles/\(id.prefix(12)).json (\(NumberText.format(Double(size) / 1024, significant: 3)) KiB)"
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
                summary = values.map { "\($0.0) (\($0.1))" }.joined(
                    separator: ", ")
            }
            rows.append([column.name, column.type, String(column.missing), summary])
        }
        print(table(rows))
        return 0
    }
}
