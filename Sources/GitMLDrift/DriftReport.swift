import Foundation
import GitMLBasics
import GitMLMarkdown

/// The ways a drift result is shown: a terminal table, Markdown for PRs, JSON for machines, CSV for sheets, and
/// the SVG histograms the HTML report embeds.
public enum DriftReport {
    static let statisticOrder = [
        "psi", "ks", "ks_p", "chi2", "chi2_p", "jensen_shannon", "wasserstein", "out_of_range", "missing_reference",
        "missing_current",
    ]

    static func value(_ drift: ColumnDrift, _ name: String) -> String {
        drift.statistics[name].map({ NumberText.format($0, significant: 4) }) ?? "-"
    }

    static func verdict(_ drift: ColumnDrift) -> String { drift.drifted ? "DRIFT" : "ok" }

    /// Rows for a table: column, kind, verdict, the main statistics, why.
    static func rows(_ results: [ColumnDrift]) -> [[String]] {
        results.map { drift in
            let test = drift.kind == "numeric" ? value(drift, "ks_p") : value(drift, "chi2_p")
            return [
                drift.column, drift.kind, verdict(drift), value(drift, "psi"), test, value(drift, "jensen_shannon"),
                drift.reasons.joined(separator: "; "),
            ]
        }
    }

    static let header = ["COLUMN", "KIND", "RESULT", "PSI", "P-VALUE", "JS", "WHY"]

    /// Plain text columns, for a terminal.
    public static func text(_ results: [ColumnDrift], title: String) -> String {
        let drifted = results.filter(\.drifted).count
        return "\(TerminalText.escape(title))\n" + TerminalText.table([header] + rows(results))
            + "\n\(drifted) of \(results.count) columns drifted\n"
    }

    /// Markdown for a pull request or the HTML report; every value escaped.
    public static func markdown(_ results: [ColumnDrift], title: String) -> String {
        let cell = Markdown.escape
        let drifted = results.filter(\.drifted).count
        var lines = [
            "## \(cell(title))", "", "**\(drifted) of \(results.count) columns drifted.**", "",
            "| " + ["column", "kind", "result", "PSI", "p-value", "Jensen-Shannon", "why"].joined(separator: " | ")
                + " |",
            "|---|---|---|---|---|---|---|",
        ]
        lines += rows(results).map { "| " + $0.map(cell).joined(separator: " | ") + " |" }
        return lines.joined(separator: "\n") + "\n"
    }

    /// One object per column with every statistic.
    public static func json(_ results: [ColumnDrift], reference: String, current: String, thresholds: DriftThresholds)
        -> JSONValue
    {
        .object([
            "format": .int(1), "reference": .string(reference), "current": .string(current),
            "thresholds": .object(["psi": .double(thresholds.psi), "p_value": .double(thresholds.pValue)]),
            "drifted": .int(Int64(results.filter(\.drifted).count)),
            "method": .string(DriftReport.method(results)),
            "columns": .array(
                results.map { drift in
                    .object([
                        "column": .string(drift.column), "kind": .string(drift.kind), "drifted": .bool(drift.drifted),
                        "method": .string(drift.method),
                        "statistics": .object(drift.statistics.mapValues(JSONValue.double)),
                        "new_categories": .array(drift.newCategories.map(JSONValue.string)),
                        "reasons": .array(drift.reasons.map(JSONValue.string)),
                    ])
                }),
        ])
    }

    /// How the statistics were computed, for the report: `exact` when every compared column used every value of
    /// both sides, else `profile`.
    public static func method(_ results: [ColumnDrift]) -> String {
        let compared = results.filter { $0.kind == "numeric" || $0.kind == "categorical" }
        return !compared.isEmpty && compared.allSatisfy { $0.method == "exact" } ? "exact" : "profile"
    }

    /// CSV with every statistic; a cell that a spreadsheet would read as a formula (= + - @, tab, CR) is quoted
    /// with a leading apostrophe, so opening the export cannot run anything.
    public static func csv(_ results: [ColumnDrift]) -> String {
        func cell(_ text: String) -> String {
            var text = text
            if let first = text.first, "=+-@\t\r".contains(first), Double(text) == nil { text = "'" + text }
            if text.contains(where: { ",\"\n\r".contains($0) }) {
                text = "\"" + text.replacingOccurrences(of: "\"", with: "\"\"") + "\""
            }
            return text
        }
        var lines = [
            (["column", "kind", "drifted"] + statisticOrder + ["new_categories", "reasons"]).joined(separator: ",")
        ]
        for drift in results {
            let fields =
                [drift.column, drift.kind, drift.drifted ? "true" : "false"]
                + statisticOrder.map { drift.statistics[$0].map { String($0) } ?? "" }
                + [drift.newCategories.joined(separator: " "), drift.reasons.joined(separator: "; ")]
            lines.append(fields.map(cell).joined(separator: ","))
        }
        return lines.joined(separator: "\r\n") + "\r\n"
    }

    /// A small bar chart of reference and current proportions per bin, as inline SVG (labels escaped).
    public static func svg(_ drift: ColumnDrift) -> String {
        let bins = drift.bins.prefix(24)
        guard !bins.isEmpty else { return "" }
        let width = 24 * bins.count + 40
        let height = 140
        let top = bins.map { max($0.reference, $0.current) }.max() ?? 1
        let escape = Markdown.escapeHTML
        var parts = [
            "<figure><svg xmlns=\"http://www.w3.org/2000/svg\" width=\"\(width)\" height=\"\(height)\" role=\"img\" aria-label=\"\(escape(drift.column)): reference and current distribution\">"
        ]
        for (i, bin) in bins.enumerated() {
            let x = 20 + i * 24
            // Heights in 0...100 whatever a hand-edited profile holds (negative, huge or not a number).
            func height(_ share: Double) -> Int {
                let h = share / max(top, 1e-12) * 100
                return h.isFinite ? Int(Swift.min(100, Swift.max(0, h))) : 0
            }
            let hr = height(bin.reference)
            let hc = height(bin.current)
            parts.append(
                "<rect x=\"\(x)\" y=\"\(110 - hr)\" width=\"10\" height=\"\(hr)\" fill=\"#8c959f\"><title>\(escape(bin.label)) reference \(NumberText.percent(bin.reference))</title></rect>"
            )
            parts.append(
                "<rect x=\"\(x + 10)\" y=\"\(110 - hc)\" width=\"10\" height=\"\(hc)\" fill=\"\(drift.drifted ? "#cf222e" : "#1f6feb")\"><title>\(escape(bin.label)) current \(NumberText.percent(bin.current))</title></rect>"
            )
        }
        parts.append(
            "<line x1=\"16\" y1=\"110\" x2=\"\(width - 16)\" y2=\"110\" stroke=\"currentColor\" stroke-width=\"1\"/>")
        parts.append(
            "<text x=\"20\" y=\"130\" font-size=\"11\" fill=\"currentColor\">grey: reference, colour: current</text>")
        parts.append("</svg><figcaption>\(escape(drift.column))</figcaption></figure>")
        return parts.joined(separator: "\n")
    }
}
