import Foundation
import GitMLBasics

/// YAML front matter that Hugging Face reads as model-card metadata (`license`, `tags`, `datasets`, `model-index`
/// with the evaluation results), plus git-ml's own block naming the lineage the card was made from. Every string
/// is a JSON-quoted YAML scalar, so no value can add keys or break the block.
enum FrontMatter {
    static func render(_ facts: CardFacts, lineageDigest: String) -> String {
        func quoted(_ text: String) -> String { JSONWriter.compact(.string(text)) }
        var lines = ["---"]
        if let license = facts.card["license"]?.first { lines.append("license: \(quoted(license))") }
        if let language = facts.card["language"], !language.isEmpty {
            lines.append("language:")
            lines += language.map { "- \(quoted($0))" }
        }
        lines.append("tags:")
        lines += (["git-ml"] + (facts.card["tags"] ?? [])).map { "- \(quoted($0))" }
        let datasets = facts.card["datasets"] ?? facts.run.data.compactMap { $0["path"]?.string }
        if !datasets.isEmpty {
            lines.append("datasets:")
            lines += datasets.map { "- \(quoted($0))" }
        }
        let metrics = facts.run.metrics.keys.sorted().compactMap { name -> (String, Double)? in
            guard let value = facts.run.metrics[name]?.number, value.isFinite else { return nil }
            return (name, value)
        }
        lines += [
            "model-index:", "- name: \(quoted(facts.model))", "  results:", "  - task:",
            "      type: \(quoted(facts.card["task"]?.first ?? "other"))",
            "    dataset:", "      name: \(quoted(datasets.first ?? "unrecorded"))",
            "      type: \(quoted(datasets.first ?? "unrecorded"))",
            "    metrics:",
        ]
        for (name, value) in metrics {
            lines += [
                "    - type: \(quoted(name))", "      value: \(NumberText.exact(value))",
                "      name: \(quoted(name))",
            ]
        }
        if metrics.isEmpty { lines[lines.count - 1] = "    metrics: []" }
        lines += [
            "git_ml:", "  model: \(quoted(facts.model))", "  version: \(facts.version)",
            "  stage: \(quoted(facts.entry.stage.rawValue))", "  run: \(quoted(facts.run.id))",
            "  commit: \(quoted(facts.run.record["git"]?["commit"]?.string ?? ""))",
            "  lineage_digest: \(quoted(lineageDigest))", "---", "",
        ]
        return lines.joined(separator: "\n")
    }

    /// The document without its front matter.
    static func strip(_ text: String) -> String {
        guard text.hasPrefix("---\n"),
            let end = text.range(of: "\n---\n", range: text.index(text.startIndex, offsetBy: 3)..<text.endIndex)
        else { return text }
        return String(text[end.upperBound...])
    }

    /// The lineage digest a card was rendered from, read from its front matter.
    static func lineageDigest(in text: String) -> String? {
        let head = String(text.prefix(64 << 10))
        let matter =
            head.hasPrefix("---\n") ? String(head.dropFirst(4).components(separatedBy: "\n---\n").first ?? "") : ""
        for line in matter.split(separator: "\n") where line.hasPrefix("  lineage_digest: ") {
            return String(line.dropFirst("  lineage_digest: ".count)).trimmingCharacters(
                in: CharacterSet(charactersIn: "\""))
        }
        return nil
    }
}
