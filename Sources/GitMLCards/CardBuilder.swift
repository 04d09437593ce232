import Foundation
import GitMLBasics
import GitMLLineage
import GitMLMarkdown
import GitMLRegistry
import GitMLStore
import Mustache

/// A rendered card: Markdown with Hugging Face front matter, and the digest of the lineage it was made from.
public struct RenderedCard: Sendable {
    public let model: String
    public let version: Int
    /// Front matter and body.
    public let markdown: String
    /// The body alone (what HTML and PR comments are made from).
    public let body: String
    /// SHA-256 over everything the card shows that comes from records: a different digest means a stale card.
    public let lineageDigest: String
}

/// Builds model cards from the recorded lineage and the human-written `card.yaml`.
public struct CardBuilder {
    let workspace: Workspace

    public init(workspace: Workspace) { self.workspace = workspace }

    /// Where a card is committed for review: `.mlops/cards/<name>/v<n>.md`.
    public static func committedPath(model: String, version: Int, format: String = "md") -> String {
        ".mlops/cards/\(model)/v\(version).\(format)"
    }

    /// The sections `--check` requires when gates.yaml names none.
    public static let defaultSections = [
        "Model details", "Intended use", "Training data", "Evaluation", "Gate results", "Environment and reproduction",
        "Failure modes and limitations",
    ]

    /// Renders the card of `name` at `reference` (a version, a stage, `latest`) with the repository's template, or
    /// the one at `templatePath` (inside the repository).
    public func render(_ name: String, reference: String, templatePath: String? = nil) throws -> RenderedCard {
        let facts = try CardFacts(workspace: workspace, model: name, reference: reference)
        return try render(facts, template: try loadTemplate(templatePath))
    }

    /// Renders the card of every version of `name`, reading the registry and the template once.
    public func renderAll(_ name: String, templatePath: String? = nil) throws -> [RenderedCard] {
        let state = try Registry(source: WorkTreeSource(workspace: workspace)).model(name)
        let template = try loadTemplate(templatePath)
        return try state.versions.keys.sorted().map { version in
            try render(CardFacts(workspace: workspace, state: state, version: version), template: template)
        }
    }

    private func render(_ facts: CardFacts, template: (MustacheTemplate, String)) throws -> RenderedCard {
        let digest = try facts.lineageDigest(templateDigest: template.1)
        let body = template.0.render(facts.context)
        let markdown = FrontMatter.render(facts, lineageDigest: digest) + body
        return RenderedCard(
            model: facts.model, version: facts.version, markdown: markdown, body: body, lineageDigest: digest)
    }

    /// The card as Markdown (`md`) or a self-contained HTML page (`html`).
    public static func text(_ card: RenderedCard, format: String) -> String {
        format == "html" ? html(card) : card.markdown
    }

    /// Writes the card where it is committed for review (`.mlops/cards/<name>/v<n>.<format>`) and returns that path.
    @discardableResult
    public func commit(_ card: RenderedCard, format: String) throws -> String {
        let path = Self.committedPath(model: card.model, version: card.version, format: format)
        try workspace.files.write(Array(Self.text(card, format: format).utf8), to: path)
        return path
    }

    /// A self-contained HTML page for a card: cmark-gfm's safe rendering inside a styled document.
    public static func html(_ card: RenderedCard) -> String {
        HTMLPage.render(title: "Model card: \(card.model) version \(card.version)", body: Markdown.html(card.body))
    }

    /// Any Markdown document (a reproduction or drift report) as the same kind of self-contained, safe page;
    /// `trustedHTML` (charts git-ml drew itself, labels escaped) follows the rendered Markdown.
    public static func page(title: String, markdown: String, appendingTrustedHTML trustedHTML: String = "") -> String {
        HTMLPage.render(title: title, body: Markdown.html(markdown) + trustedHTML)
    }

    /// What is wrong with the committed card of a version: missing or empty required sections, or stale lineage
    /// (the digest covers the template, so name the one the card was rendered with).
    public func check(_ name: String, reference: String, sections required: [String], templatePath: String? = nil)
        throws -> [String]
    {
        let facts = try CardFacts(workspace: workspace, model: name, reference: reference)
        let path = Self.committedPath(model: name, version: facts.version)
        guard try workspace.files.exists(path) else {
            return ["no card is committed at \(path)"]
        }
        let text = String(decoding: try workspace.files.read(path, limit: 16 << 20), as: UTF8.self)
        var problems: [String] = []
        let sections = Markdown.sections(FrontMatter.strip(text))
        for title in required {
            guard let section = sections.first(where: { $0.title.lowercased() == title.lowercased() }) else {
                problems.append("section \"\(title)\" is missing")
                continue
            }
            if !section.hasContent { problems.append("section \"\(title)\" is empty") }
        }
        let (_, templateDigest) = try loadTemplate(templatePath)
        let current = try facts.lineageDigest(templateDigest: templateDigest)
        if FrontMatter.lineageDigest(in: text) != current {
            problems.append("the card is stale: its lineage digest no longer matches the version's records")
        }
        return problems
    }

    /// Markdown for a pull-request comment: the card's summary and the metric deltas against the champion.
    public func pullRequestComment(_ name: String, reference: String) throws -> String {
        let facts = try CardFacts(workspace: workspace, model: name, reference: reference)
        registerMarkdownContentType
        let template = try MustacheTemplate(string: Self.pullRequestTemplate)
        return template.render(facts.context)
    }

    static let pullRequestTemplate = """
        {{% CONTENT_TYPE: MARKDOWN}}
        ### Model card: {{model}} version {{version}} ({{stage}})

        {{#card.intended_use}}
        {{.}}

        {{/card.intended_use}}
        Run {{run_short}} at commit {{commit_short}}, owner {{owner_email}}.{{#has_champion}} Compared with the champion, version {{champion_version}}:{{/has_champion}}

        | metric | value | champion | delta |
        |---|---|---|---|
        {{#metrics}}
        | {{name}} | {{value}} | {{champion}} | {{delta}} |
        {{/metrics}}
        {{#gate}}

        Gates for {{stage}}: **{{outcome}}** ({{failed_count}} failing).
        {{/gate}}
        {{^gate}}

        No gates have been evaluated for this version yet.
        {{/gate}}

        """

    /// The template text as Mustache: the repository's `.mlops/templates/model-card.md`, the built-in one when that
    /// is absent, or `path`. Values are always escaped for Markdown, whatever content type the file asks for.
    private func loadTemplate(_ path: String?) throws -> (MustacheTemplate, String) {
        registerMarkdownContentType
        let (text, source): (String, String)
        let repositoryTemplate = ".mlops/templates/model-card.md"
        if let path {
            let relative = try workspace.resolve(path)
            text = String(decoding: try workspace.files.read(relative, limit: 4 << 20), as: UTF8.self)
            source = relative
        } else if try workspace.files.exists(repositoryTemplate) {
            text = String(decoding: try workspace.files.read(repositoryTemplate, limit: 4 << 20), as: UTF8.self)
            source = repositoryTemplate
        } else {
            text = Initializer.modelCardTemplate
            source = "the built-in template"
        }
        var lines = text.split(separator: "\n", omittingEmptySubsequences: false)
        let pragma = "{{% CONTENT_TYPE: MARKDOWN}}"
        var offset = 0
        if let first = lines.first, first.contains("CONTENT_TYPE") {
            lines[0] = Substring(pragma)
        } else {
            lines.insert(Substring(pragma), at: 0)
            offset = 1
        }
        let prepared = lines.joined(separator: "\n")
        // The Mustache parser recurses once per open section: a hostile template nesting thousands would overflow
        // the stack, so nesting is bounded before parsing (a card needs a handful of levels).
        var depth = 0
        var deepest = 0
        var rest = Substring(prepared)
        while let open = rest.range(of: "{{") {
            let tag = rest[open.upperBound...].drop(while: { $0 == " " }).first
            if tag == "#" || tag == "^" { depth += 1 } else if tag == "/" { depth -= 1 }
            deepest = max(deepest, depth)
            rest = rest[open.upperBound...]
        }
        guard deepest <= 64 else {
            throw CardError.template(
                source: source, line: 1, column: 1, detail: "sections nest \(deepest) deep; at most 64 are allowed")
        }
        do {
            return (try MustacheTemplate(string: prepared), try SHA256.hex(of: prepared))
        } catch let error as MustacheTemplate.ParserError {
            throw CardError.template(
                source: source, line: error.context.lineNumber - offset, column: error.context.columnNumber,
                detail: "\(error.error)")
        }
    }
}

/// Markdown escaping for every `{{value}}` a template inserts.
private let registerMarkdownContentType: Void = {
    MustacheContentTypes.register(MarkdownContentType(), named: "MARKDOWN")
}()

private struct MarkdownContentType: MustacheContentType {
    func escapeText(_ text: String) -> String { Markdown.escape(text) }
}
