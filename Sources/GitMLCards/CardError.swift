import GitMLBasics

/// Errors of the cards area.
public enum CardError: GitMLError {
    case template(source: String, line: Int, column: Int, detail: String)
    case malformedCardFile(file: String, detail: String)

    public var message: String {
        switch self {
        case .template(let source, let line, let column, let detail):
            return "\(source):\(line):\(column): template syntax error (\(detail))"
        case .malformedCardFile(let file, let detail): return "\(file): \(detail)"
        }
    }

    public var hint: String {
        switch self {
        case .template:
            return
                "fix the tag on that line; Mustache tags are {{name}}, {{#section}}...{{/section}}, {{^inverted}}...{{/inverted}}"
        case .malformedCardFile: return "card.yaml fields are text or lists of text (docs/cards.md)"
        }
    }

    public var code: String {
        switch self {
        case .template: return "template-syntax-error"
        case .malformedCardFile: return "malformed-card-file"
        }
    }
}
