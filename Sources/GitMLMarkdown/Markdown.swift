internal import CCmarkGFM
import GitMLBasics

#if canImport(Glibc)
    import Glibc
#endif

private let extensionsRegistered: Bool = {
    cmark_gfm_core_extensions_ensure_registered()
    return true
}()

/// GitHub-flavoured Markdown through cmark-gfm (tables, strikethrough, autolinks, the tag filter), in safe mode:
/// raw HTML is dropped and `javascript:`, `vbscript:`, `file:` and non-image `data:` links are emptied.
public enum Markdown {
    /// A heading and whether anything but whitespace follows it before the next heading of the same or a higher level.
    public struct Section: Sendable, Equatable {
        public var level: Int
        public var title: String
        public var hasContent: Bool
    }

    /// The HTML body for `markdown`.
    public static func html(_ markdown: String) -> String {
        withDocument(markdown, fallback: "") { document, extensions in
            guard let raw = cmark_render_html(document, git_ml_cmark_opt_default(), extensions) else { return "" }
            defer { free(raw) }
            return String(cString: raw)
        }
    }

    /// The document's sections, in order.
    public static func sections(_ markdown: String) -> [Section] {
        withDocument(markdown, fallback: []) { document, _ in
            var sections: [Section] = []
            var node = cmark_node_first_child(document)
            while let current = node {
                if cmark_node_get_type(current) == CMARK_NODE_HEADING {
                    sections.append(
                        Section(
                            level: Int(cmark_node_get_heading_level(current)), title: text(of: current),
                            hasContent: false))
                } else if text(of: current).contains(where: { !$0.isWhitespace }) {
                    // Content counts for the innermost open section and every enclosing one.
                    var level = Int.max
                    for i in sections.indices.reversed() where sections[i].level < level {
                        sections[i].hasContent = true
                        level = sections[i].level
                    }
                }
                node = cmark_node_next(current)
            }
            return sections
        }
    }

    /// Parses `markdown` and hands the document to `body`; `fallback` only if cmark cannot allocate.
    private static func withDocument<T>(
        _ markdown: String, fallback: T, _ body: (OpaquePointer, UnsafeMutablePointer<cmark_llist>?) -> T
    ) -> T {
        _ = extensionsRegistered
        guard let parser = cmark_parser_new(git_ml_cmark_opt_default()) else { return fallback }
        defer { cmark_parser_free(parser) }
        for name in ["table", "strikethrough", "autolink", "tagfilter"] {
            if let syntax = cmark_find_syntax_extension(name) { cmark_parser_attach_syntax_extension(parser, syntax) }
        }
        markdown.utf8CString.withUnsafeBufferPointer { buffer in
            if let base = buffer.baseAddress { cmark_parser_feed(parser, base, buffer.count - 1) }
        }
        guard let document = cmark_parser_finish(parser) else { return fallback }
        defer { cmark_node_free(document) }
        return body(document, cmark_parser_get_syntax_extensions(parser))
    }

    /// The text below a node: literals of text, code and inline code, joined.
    private static func text(of node: OpaquePointer) -> String {
        var out = ""
        let iterator = cmark_iter_new(node)
        defer { cmark_iter_free(iterator) }
        while true {
            let event = cmark_iter_next(iterator)
            if event == CMARK_EVENT_DONE { break }
            guard event == CMARK_EVENT_ENTER, let current = cmark_iter_get_node(iterator) else { continue }
            let type = cmark_node_get_type(current)
            if type == CMARK_NODE_TEXT || type == CMARK_NODE_CODE || type == CMARK_NODE_CODE_BLOCK,
                let literal = cmark_node_get_literal(current)
            {
                out += String(cString: literal)
            } else if type == CMARK_NODE_SOFTBREAK || type == CMARK_NODE_LINEBREAK {
                out += " "
            }
        }
        return out
    }

    /// `text` as literal Markdown text: every character that could start emphasis, a link, code, raw HTML, an entity,
    /// a table cell or a strikethrough is backslash-escaped, as is anything that would make a block (a heading, list,
    /// quote or rule) at the start; line breaks become spaces, so a value cannot leave its table cell or line.
    /// `text` safe inside HTML text and attribute values.
    public static func escapeHTML(_ text: String) -> String {
        var out = ""
        out.reserveCapacity(text.utf8.count)
        for character in text {
            switch character {
            case "&": out += "&amp;"
            case "<": out += "&lt;"
            case ">": out += "&gt;"
            case "\"": out += "&quot;"
            case "'": out += "&#39;"
            default: out.append(character)
            }
        }
        return out
    }

    private static let alwaysEscaped: Set<Unicode.Scalar> = [
        "\\", "`", "*", "_", "[", "]", "<", ">", "|", "~", "&", "!",
    ]
    private static let escapedAtStart: Set<Unicode.Scalar> = ["#", "-", "+", "="]

    public static func escape(_ text: String) -> String {
        var out = ""
        out.reserveCapacity(text.utf8.count + 8)
        let scalars = Array(text.unicodeScalars)
        // Digits then "." or ")" at the start would open an ordered list.
        let leadingDigits = scalars.prefix { ("0"..."9").contains($0) }.count
        for (i, scalar) in scalars.enumerated() {
            let opensList =
                i == leadingDigits && i > 0 && (scalar == "." || scalar == ")")
                && (i + 1 == scalars.count || scalars[i + 1] == " ")
            // "# x", "- x", "+ x" or a line of "-" or "=" at the start would make a heading, a list or a rule.
            let opensBlock =
                i == 0 && Self.escapedAtStart.contains(scalar)
                && (scalars.count == 1 || scalars[1] == " " || scalars.allSatisfy { $0 == scalar || $0 == " " })
            if Self.alwaysEscaped.contains(scalar) || opensBlock || opensList {
                out.append("\\")
                out.unicodeScalars.append(scalar)
            } else if scalar == "\n" || scalar == "\r" || scalar == "\t" {
                out.append(" ")
            } else if scalar.value >= 0x20 && scalar.value != 0x7F {
                out.unicodeScalars.append(scalar)
            }
        }
        return out
    }
}
