import GitMLMarkdown

/// One self-contained HTML file: the card's body (already safe HTML from cmark-gfm) inside a page with embedded
/// CSS that reads well on screen and in print. Nothing is loaded from elsewhere.
enum HTMLPage {
    static func render(title: String, body: String) -> String {
        """
        <!DOCTYPE html>
        <html lang="en">
        <head>
        <meta charset="utf-8">
        <meta name="viewport" content="width=device-width, initial-scale=1">
        <meta name="generator" content="git-ml">
        <title>\(Markdown.escapeHTML(title))</title>
        <style>
        \(css)
        </style>
        </head>
        <body>
        <main>
        \(body)</main>
        </body>
        </html>

        """
    }

    static let css = """
        :root { color-scheme: light dark; --fg: #1f2328; --muted: #59636e; --line: #d1d9e0; --head: #f6f8fa; }
        @media (prefers-color-scheme: dark) { :root { --fg: #e6edf3; --muted: #9198a1; --line: #3d444d; --head: #151b23; } }
        body { margin: 0; color: var(--fg); font: 15px/1.55 -apple-system, "Segoe UI", Helvetica, Arial, sans-serif; }
        main { max-width: 60rem; margin: 0 auto; padding: 2rem 1.5rem 4rem; }
        h1 { font-size: 1.9rem; border-bottom: 1px solid var(--line); padding-bottom: .3em; }
        h2 { font-size: 1.35rem; margin-top: 2em; border-bottom: 1px solid var(--line); padding-bottom: .2em; }
        table { border-collapse: collapse; margin: 1em 0; display: block; overflow-x: auto; }
        th, td { border: 1px solid var(--line); padding: .35em .7em; text-align: left; vertical-align: top; }
        th { background: var(--head); }
        code { font: .9em ui-monospace, SFMono-Regular, Menlo, monospace; word-break: break-all; }
        p, li { overflow-wrap: anywhere; }
        @media print {
          body { font-size: 11pt; color: #000; }
          main { max-width: none; padding: 0; }
          h2 { break-after: avoid; }
          table, tr { break-inside: avoid; }
          th { background: #eee; }
        }
        """
}
