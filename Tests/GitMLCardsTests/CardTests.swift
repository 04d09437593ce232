import Foundation
import GitMLBasics
import GitMLLineage
import GitMLMarkdown
import GitMLRegistry
import GitMLStore
import GitMLTestSupport
import Testing

@testable import GitMLCards

/// A repository whose registry and run records are written byte for byte here (fixed times, ids and environment),
/// so its card can be compared with a golden file. Model `churn`: version 1 in production (the champion),
/// version 2 in staging with gate evidence and an approval.
private struct Fixture {
    let repo: TempRepo
    let workspace: Workspace

    init(name: String = #function, cardYAML: String? = nil, metrics2: [String: JSONValue]? = nil) throws {
        repo = try TempRepo(name: name)
        workspace = try Workspace(currentDirectory: repo.root, environment: repo.environment, requireInitialized: false)
        _ = try Initializer.initialize(workspace)
        let run1 = try writeRun(
            ["accuracy": .double(0.91), "f1@country=DE": .double(0.80), "latency_p99_ms": .int(14)], seed: 7)
        let run2 = try writeRun(
            metrics2 ?? [
                "accuracy": .double(0.931234567891), "f1@country=DE": .double(0.78), "n@country=DE": .int(420),
                "latency_p99_ms": .int(12),
                "cost_per_1k_requests": .double(0.031),
            ], seed: 42)
        let v1 = try writeVersion(1, run: run1)
        let v2 = try writeVersion(2, run: run2)
        try writeEvent(
            [
                "version": .int(1), "kind": .string("stage"), "from": .null, "to": .string("draft"),
                "reason": .string("registered"),
            ], at: "2026-01-05T10:00:00.000000Z", digest: v1)
        try writeEvent(
            [
                "version": .int(1), "kind": .string("stage"), "from": .string("draft"), "to": .string("production"),
                "reason": .string("first model"),
            ], at: "2026-01-06T10:00:00.000000Z", digest: v1)
        try writeEvent(
            [
                "version": .int(2), "kind": .string("stage"), "from": .null, "to": .string("draft"),
                "reason": .string("registered"),
            ], at: "2026-02-01T09:00:00.000000Z", digest: v2)
        try writeEvent(
            [
                "version": .int(2), "kind": .string("approval"), "comment": .string("read the card"),
                "actor": .object(["name": .string("Rev Iewer"), "email": .string("reviewer@example.com")]),
            ], at: "2026-02-01T10:00:00.000000Z", digest: v2)
        try writeEvent(
            [
                "version": .int(2), "kind": .string("gate"), "stage": .string("staging"), "passed": .bool(true),
                "checks": .array([
                    .object([
                        "check": .string("metric accuracy"), "observed": .string("0.93"),
                        "threshold": .string(">= 0.9"),
                        "passed": .bool(true), "detail": .string("within bounds"),
                    ])
                ]),
            ], at: "2026-02-01T11:00:00.000000Z", digest: v2)
        try writeEvent(
            [
                "version": .int(2), "kind": .string("stage"), "from": .string("draft"), "to": .string("staging"),
                "reason": .string("beats v1"),
            ], at: "2026-02-01T12:00:00.000000Z", digest: v2)
        try repo.write(
            ".mlops/models/churn/card.yaml",
            cardYAML ?? """
                intended_use: |
                  Ranks customers by how likely they are to cancel in the next 30 days, for the retention team.

                  Scores are refreshed nightly.
                out_of_scope: Credit decisions or anything with legal effect.
                limitations:
                  - Trained on 2025 EU customers only.
                  - Accuracy drops for accounts younger than 30 days.
                safety:
                  - Do not use the score to deny service.
                license: apache-2.0
                tags: [tabular, churn]
                task: tabular-classification

                """)
    }

    private func writeRun(_ metrics: [String: JSONValue], seed: Int64) throws -> String {
        let record: JSONValue = .object([
            "schema_version": .int(1), "kind": .string("snapshot"), "status": .string("recorded"),
            "created": .string("2026-01-0\(seed == 7 ? 4 : 5)T08:00:00.000000Z"), "nonce": .string("fixture\(seed)"),
            "owner": .object(["name": .string("Data Scientist"), "email": .string("ds@example.com")]),
            "git": .object([
                "commit": .string(String(repeating: seed == 7 ? "a" : "b", count: 40)), "branch": .string("main"),
                "dirty": .bool(false), "patch": .null,
            ]),
            "data": .array([
                .object([
                    "path": .string("data/train.csv"), "type": .string("file"),
                    "sha256": .string(String(repeating: "c", count: 64)),
                    "size": .int(2048), "files": .int(1),
                    "dvc": .object(["md5": .string("0123456789abcdef0123456789abcdef")]),
                ])
            ]),
            "artifacts": .array([
                .object([
                    "path": .string("model.pkl"), "type": .string("file"),
                    "sha256": .string(String(repeating: seed == 7 ? "d" : "e", count: 64)), "size": .int(1000),
                    "files": .int(1),
                ])
            ]),
            "environment": .object([
                "os": .object(["name": .string("Debian GNU/Linux 12 (bookworm)")]),
                "cpu": .object(["model": .string("Example CPU"), "count": .int(8)]),
                "gpus": .array([.object(["name": .string("NVIDIA A10")])]),
                "python": .object([
                    "version": .string("3.11.7"),
                    "packages": .object(["scikit-learn": .string("1.5.2"), "numpy": .string("2.4.6")]),
                ]),
                "container": .object(["image": .null, "runtime": .string("docker")]),
                "lockfiles": .object(["requirements.txt": .string(String(repeating: "c", count: 64))]),
            ]),
            "params": .object(["lr": .double(0.01)]), "metrics": .object(metrics), "metric_steps": .object([:]),
            "seed": .object(["value": .int(seed), "source": .string("cli"), "exported_as": .array([])]),
            "profiles": .array([]), "parents": .array([]),
        ])
        let bytes = Array(JSONWriter.pretty(record).utf8)
        let id = try SHA256.hex(of: bytes)
        try AtomicFile.write(bytes, to: workspace.recordPath(id))
        return id
    }

    private func writeVersion(_ n: Int, run: String) throws -> String {
        let value: JSONValue = .object([
            "schema_version": .int(1), "model": .string("churn"), "version": .int(Int64(n)), "run": .string(run),
            "artifacts": .array([
                .object([
                    "path": .string("model.pkl"), "sha256": .string(String(repeating: n == 1 ? "d" : "e", count: 64)),
                    "size": .int(1000),
                ])
            ]),
            "created": .string("2026-01-0\(n + 4)T09:00:00.000000Z"),
            "owner": .object(["name": .string("Data Scientist"), "email": .string("ds@example.com")]),
        ])
        let bytes = Array(JSONWriter.pretty(value).utf8)
        try AtomicFile.write(bytes, to: workspace.absolute(".mlops/models/churn/versions/\(n).json"))
        return try SHA256.hex(of: bytes)
    }

    private func writeEvent(_ fields: [String: JSONValue], at time: String, digest: String) throws {
        var fields = fields
        fields["schema_version"] = .int(1)
        fields["model"] = .string("churn")
        fields["time"] = .string(time)
        fields["version_digest"] = .string(digest)
        if fields["actor"] == nil {
            fields["actor"] = .object(["name": .string("Data Scientist"), "email": .string("ds@example.com")])
        }
        let bytes = Array(JSONWriter.pretty(.object(fields)).utf8)
        let name = time.filter { $0 != "-" && $0 != ":" } + "-" + String(try SHA256.hex(of: bytes).prefix(12))
        try AtomicFile.write(bytes, to: workspace.absolute(".mlops/models/churn/events/\(name).json"))
    }
}

/// Compares with `Snapshots/<name>`; `RECORD_SNAPSHOTS=1` (scripts/record-snapshots) writes it instead.
private func assertGolden(_ text: String, _ name: String, sourceLocation: SourceLocation = #_sourceLocation) throws {
    let path = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Snapshots/\(name)")
        .path
    if ProcessInfo.processInfo.environment["RECORD_SNAPSHOTS"] == "1" {
        try text.write(toFile: path, atomically: true, encoding: .utf8)
        return
    }
    guard let golden = try? String(contentsOfFile: path, encoding: .utf8) else {
        Issue.record("missing snapshot \(name): run scripts/record-snapshots", sourceLocation: sourceLocation)
        return
    }
    #expect(
        text == golden, "\(name) differs from its snapshot; if the change is intended, run scripts/record-snapshots",
        sourceLocation: sourceLocation)
}

@Suite("Model cards")
struct CardTests {
    @Test("a card renders from lineage byte for byte as its golden files, in Markdown and HTML")
    func golden() throws {
        let fixture = try Fixture()
        let card = try CardBuilder(workspace: fixture.workspace).render("churn", reference: "staging")
        try assertGolden(card.markdown, "churn-v2.md")
        try assertGolden(CardBuilder.html(card), "churn-v2.html")
        let pr = try CardBuilder(workspace: fixture.workspace).pullRequestComment("churn", reference: "2")
        try assertGolden(pr, "churn-v2-pr.md")
        let again = try CardBuilder(workspace: fixture.workspace).render("churn", reference: "2")
        #expect(again.markdown == card.markdown, "the same lineage renders the same bytes")
    }

    @Test("values from card.yaml and the records cannot inject Markdown or HTML")
    func hostileValues() throws {
        let fixture = try Fixture(
            cardYAML: """
                intended_use: "**bold** [click](javascript:alert(1)) <script>alert(1)</script> <img src=x onerror=alert(1)> a|b"
                limitations: ["| broken | table |", "# not a heading", "1. not a list", "- not a list either"]

                """,
            metrics2: ["acc|evil**": .double(0.5), "<b>x</b>": .int(1)])
        let card = try CardBuilder(workspace: fixture.workspace).render("churn", reference: "2")
        let html = CardBuilder.html(card)
        #expect(!html.contains("<script") && !html.contains("<img") && !html.contains("<b>x"))
        #expect(!html.contains("href=\"javascript"))
        #expect(html.contains("**bold** [click](javascript:alert(1)) &lt;script&gt;alert(1)&lt;/script&gt;"))
        #expect(html.contains("<li>| broken | table |</li>") && html.contains("<li># not a heading</li>"))
        #expect(html.contains("<li>1. not a list</li>") && html.contains("<li>- not a list either</li>"))
        // Every row of the evaluation table keeps its four cells.
        let evaluation = try #require(
            html.components(separatedBy: "<h2>Evaluation</h2>").last?.components(separatedBy: "</table>").first)
        for row in evaluation.components(separatedBy: "<tr>").dropFirst() {
            #expect(row.components(separatedBy: "<td").count - 1 == 4 || row.contains("<th"), "\(row)")
        }
        #expect(evaluation.contains("<td>acc|evil**</td>"))
    }

    @Test("a template syntax error names its line")
    func templateError() throws {
        let fixture = try Fixture()
        try fixture.repo.write("bad.md", "# Card\n{{#metrics}}\n{{/data}}\n")
        #expect {
            try CardBuilder(workspace: fixture.workspace).render("churn", reference: "2", templatePath: "bad.md")
        } throws: { error in
            (error as? CardError)?.message.hasPrefix("bad.md:3:") == true
        }
    }

    @Test("an unknown field renders empty and --check reports the section it leaves empty")
    func unknownFieldAndCheck() throws {
        let fixture = try Fixture()
        let builder = CardBuilder(workspace: fixture.workspace)
        try fixture.repo.write(
            "thin.md",
            "# Card\n\n## Intended use\n{{no_such_field}}\n\n## Evaluation\n{{#metrics}}- {{name}}\n{{/metrics}}\n")
        let thin = try builder.render("churn", reference: "2", templatePath: "thin.md")
        #expect(
            thin.body
                == "# Card\n\n## Intended use\n\n\n## Evaluation\n- accuracy\n- cost\\_per\\_1k\\_requests\n- latency\\_p99\\_ms\n"
        )
        try AtomicFile.write(
            Array(thin.markdown.utf8),
            to: fixture.workspace.absolute(CardBuilder.committedPath(model: "churn", version: 2)))
        let problems = try builder.check(
            "churn", reference: "2", sections: ["Intended use", "Evaluation", "Safety notes"], templatePath: "thin.md")
        #expect(!problems.contains { $0.contains("stale") }, "rendered and checked with the same template")
        #expect(
            try builder.check("churn", reference: "2", sections: []).contains { $0.contains("stale") },
            "the default template is another one")
        #expect(problems.contains("section \"Intended use\" is empty"))
        #expect(problems.contains("section \"Safety notes\" is missing"))
        #expect(!problems.contains { $0.contains("Evaluation") })
    }

    @Test("a committed card goes stale when the version's records change")
    func staleness() throws {
        let fixture = try Fixture()
        let builder = CardBuilder(workspace: fixture.workspace)
        let card = try builder.render("churn", reference: "2")
        try AtomicFile.write(
            Array(card.markdown.utf8),
            to: fixture.workspace.absolute(CardBuilder.committedPath(model: "churn", version: 2)))
        #expect(try builder.check("churn", reference: "2", sections: CardBuilder.defaultSections) == [])
        _ = try RegistryWriter(workspace: fixture.workspace).approve("churn", version: 2, comment: "a second look")
        #expect(
            try builder.check("churn", reference: "2", sections: CardBuilder.defaultSections)
                == ["the card is stale: its lineage digest no longer matches the version's records"])
    }

    @Test("a 100,000-character run of _, > or < in a field renders as literal text")
    func longRuns() throws {
        for character in ["_", ">", "<"] {
            let run = String(repeating: character, count: 100_000)
            let fixture = try Fixture(
                name: "longRuns\(character.unicodeScalars.first!.value)", cardYAML: "intended_use: \"\(run)\"\n")
            let card = try CardBuilder(workspace: fixture.workspace).render("churn", reference: "2")
            let html = CardBuilder.html(card)
            let literal = character == "_" ? run : String(repeating: character == ">" ? "&gt;" : "&lt;", count: 100_000)
            #expect(html.contains("<p>\(literal)</p>"))
        }
    }

    @Test("the template git ml init copies is the one shipped in templates/")
    func shippedTemplate() throws {
        let path = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent()
            .appendingPathComponent("templates/model-card.md").path
        #expect(try String(contentsOfFile: path, encoding: .utf8) == Initializer.modelCardTemplate)
    }
}

@Suite("Markdown")
struct MarkdownTests {
    @Test(
        "escaping keeps values literal",
        arguments: [
            ("a|b", "a\\|b"), ("**x**", "\\*\\*x\\*\\*"), ("[a](b)", "\\[a\\](b)"), ("<i>", "\\<i\\>"),
            ("# h", "\\# h"),
            ("#hashtag", "#hashtag"), ("- item", "\\- item"), ("-0.5", "-0.5"), ("1. x", "1\\. x"), ("1.5", "1.5"),
            ("---", "\\---"), ("a\nb", "a b"), ("&amp;", "\\&amp;"), ("snake_case", "snake\\_case"),
        ])
    func escape(_ input: String, _ expected: String) {
        #expect(Markdown.escape(input) == expected)
    }

    @Test("sections know whether they have content")
    func sections() {
        let outline = Markdown.sections("# T\n\n## A\ntext\n\n## B\n\n## C\n### C1\n- x\n")
        #expect(outline.map(\.title) == ["T", "A", "B", "C", "C1"])
        #expect(outline.map(\.hasContent) == [true, true, false, true, true])
    }

    @Test("safe mode drops raw HTML and dangerous links; tables render")
    func safeHTML() {
        let html = Markdown.html(
            "<script>x</script>\n\n[a](javascript:alert(1)) [b](https://example.com)\n\n| h |\n|---|\n| c |\n")
        #expect(!html.contains("<script"))
        #expect(!html.contains("javascript:") && html.contains("href=\"https://example.com\""))
        #expect(html.contains("<table>") && html.contains("<td>c</td>"))
    }
}
