import Foundation

/// Finds secrets in text that is about to be recorded and replaces them with `<redacted>`.
/// It knows secret-looking names (`*_TOKEN`, `*_KEY`, `PASSWORD`, `DATABASE_URL`, ...), well-known token
/// shapes (AWS `AKIA...`, GitHub `ghp_...`/`github_pat_...`, OpenAI `sk-...`, Slack `xox?-...`, Hugging Face
/// `hf_...`, GitLab `glpat-...`, Google `AIza...`, JWTs, PEM private keys, passwords in URLs), and the
/// values of every secret-named variable of the environment it was made from, wherever they appear.
public struct SecretScanner: Sendable {
    /// The replacement text.
    public static let redacted = "<redacted>"
    private let knownValues: [String]

    /// A scanner that also hides the values of the secret-named variables in `environment`.
    public init(environment: [String: String]) {
        knownValues = environment.compactMap { name, value in
            Self.isSecretName(name) && value.count >= 6 ? value : nil
        }.sorted { $0.count > $1.count }
    }

    private static let secretWords: Set<String> = [
        "token", "secret", "password", "passwd", "pwd", "key", "apikey", "credential", "credentials",
        "auth", "authorization", "cookie", "session", "private", "dsn", "sig", "signature", "pass", "passphrase",
        "webhook", "connection", "conn", "cert", "pat",
    ]

    /// True for names that hold secrets by convention (`GITHUB_TOKEN`, `api-key`, `DATABASE_URL`, `passwd`).
    public static func isSecretName(_ name: String) -> Bool {
        let lower = name.lowercased()
        if lower == "database_url" || lower.hasSuffix("_database_url") || lower == "dsn" { return true }
        let words = lower.split(whereSeparator: { !$0.isLetter && !$0.isNumber }).map(String.init)
        if words.contains(where: { secretWords.contains($0) }) { return true }
        return [
            "token", "secret", "password", "passphrase", "apikey", "accesskey", "privatekey", "webhook",
            "connectionstring",
        ]
        .contains { lower.contains($0) }
    }

    /// `text` with every secret replaced.
    public func redact(_ text: String) -> String {
        Self.redactPatterns(redactKnownValues(text))
    }

    /// A value recorded under `name`: all of it hidden when the name is secret-looking, else scanned.
    public func redact(value: String, name: String) -> String {
        Self.isSecretName(name) && !value.isEmpty ? Self.redacted : redact(value)
    }

    /// A command line with secrets hidden, including the value after a secret-named flag
    /// (`--api-key VALUE`, `--password=VALUE`).
    public func redact(arguments: [String]) -> [String] {
        var out: [String] = []
        var hideNext = false
        for argument in arguments {
            if hideNext {
                out.append(Self.redacted)
                hideNext = false
                continue
            }
            if argument.hasPrefix("-") {
                let flag = argument.drop(while: { $0 == "-" })
                if let equals = flag.firstIndex(of: "=") {
                    let name = String(flag[..<equals])
                    if Self.isSecretName(name) {
                        out.append(String(argument.prefix(argument.count - flag.count)) + name + "=" + Self.redacted)
                        continue
                    }
                } else if Self.isSecretName(String(flag)) {
                    hideNext = true
                }
            } else if let equals = argument.firstIndex(of: "="), Self.isSecretName(String(argument[..<equals])) {
                out.append(String(argument[...equals]) + Self.redacted)
                continue
            }
            out.append(redact(argument))
        }
        return out
    }

    /// A URL without its user information (`https://user:token@host/x` -> `https://host/x`).
    public func redact(url: String) -> String {
        if let scheme = url.range(of: "://") {
            let rest = url[scheme.upperBound...]
            let hostEnd = rest.firstIndex(of: "/") ?? rest.endIndex
            if let at = rest[..<hostEnd].lastIndex(of: "@") {
                return redact(String(url[..<scheme.upperBound]) + String(rest[rest.index(after: at)...]))
            }
        }
        return redact(url)
    }

    /// Bytes (a log) with secrets replaced; invalid UTF-8 is repaired first.
    public func redact(bytes: [UInt8]) -> [UInt8] {
        Array(redact(String(decoding: bytes, as: UTF8.self)).utf8)
    }

    // MARK: token shapes

    private struct Shape: Sendable {
        let prefix: [UInt8]
        let minimum: Int
        let allowed: @Sendable (UInt8) -> Bool
    }

    private static func alnum(_ b: UInt8) -> Bool {
        (b >= 0x30 && b <= 0x39) || (b >= 0x41 && b <= 0x5A) || (b >= 0x61 && b <= 0x7A)
    }
    private static func upperAlnum(_ b: UInt8) -> Bool { (b >= 0x30 && b <= 0x39) || (b >= 0x41 && b <= 0x5A) }
    private static func urlSafe(_ b: UInt8) -> Bool { alnum(b) || b == 0x2D || b == 0x5F }

    private static let shapes: [Shape] = [
        Shape(prefix: Array("AKIA".utf8), minimum: 16, allowed: upperAlnum),
        Shape(prefix: Array("ASIA".utf8), minimum: 16, allowed: upperAlnum),
        Shape(prefix: Array("ghp_".utf8), minimum: 30, allowed: alnum),
        Shape(prefix: Array("gho_".utf8), minimum: 30, allowed: alnum),
        Shape(prefix: Array("ghu_".utf8), minimum: 30, allowed: alnum),
        Shape(prefix: Array("ghs_".utf8), minimum: 30, allowed: alnum),
        Shape(prefix: Array("ghr_".utf8), minimum: 30, allowed: alnum),
        Shape(prefix: Array("github_pat_".utf8), minimum: 22, allowed: { alnum($0) || $0 == 0x5F }),
        Shape(prefix: Array("sk-".utf8), minimum: 20, allowed: urlSafe),
        Shape(prefix: Array("xoxb-".utf8), minimum: 10, allowed: urlSafe),
        Shape(prefix: Array("xoxa-".utf8), minimum: 10, allowed: urlSafe),
        Shape(prefix: Array("xoxp-".utf8), minimum: 10, allowed: urlSafe),
        Shape(prefix: Array("xoxo-".utf8), minimum: 10, allowed: urlSafe),
        Shape(prefix: Array("xoxr-".utf8), minimum: 10, allowed: urlSafe),
        Shape(prefix: Array("xoxs-".utf8), minimum: 10, allowed: urlSafe),
        Shape(prefix: Array("hf_".utf8), minimum: 30, allowed: alnum),
        Shape(prefix: Array("glpat-".utf8), minimum: 20, allowed: urlSafe),
        Shape(prefix: Array("AIza".utf8), minimum: 35, allowed: urlSafe),
    ]

    private static let pemBegin = Array("-----BEGIN ".utf8)
    private static let pemEnd = Array("-----END ".utf8)
    private static let dashes = Array("-----".utf8)

    /// Replaces token shapes, JWTs, PEM blocks and URL passwords, scanning bytes once.
    static func redactPatterns(_ text: String) -> String {
        let bytes = Array(text.utf8)
        var out: [UInt8] = []
        out.reserveCapacity(bytes.count)
        let marker = Array(redacted.utf8)
        var i = 0
        func starts(_ prefix: [UInt8], at position: Int) -> Bool {
            position + prefix.count <= bytes.count && bytes[position..<position + prefix.count].elementsEqual(prefix)
        }
        func boundary(_ position: Int) -> Bool { position == 0 || !urlSafe(bytes[position - 1]) }
        scan: while i < bytes.count {
            let b = bytes[i]
            if boundary(i) {
                for shape in shapes where shape.prefix[0] == b && starts(shape.prefix, at: i) {
                    var end = i + shape.prefix.count
                    while end < bytes.count && shape.allowed(bytes[end]) { end += 1 }
                    if end - i - shape.prefix.count >= shape.minimum {
                        out += marker
                        i = end
                        continue scan
                    }
                }
                if b == UInt8(ascii: "e"), let end = jwtEnd(bytes, from: i) {
                    out += marker
                    i = end
                    continue scan
                }
            }
            if b == UInt8(ascii: "-"), starts(pemBegin, at: i), let end = pemBlockEnd(bytes, from: i) {
                out += marker
                i = end
                continue scan
            }
            if b == UInt8(ascii: ":"), starts(Array("://".utf8), at: i), let end = userInfoEnd(bytes, from: i + 3) {
                out += Array("://".utf8) + marker + [UInt8(ascii: "@")]
                i = end
                continue scan
            }
            out.append(b)
            i += 1
        }
        return String(decoding: out, as: UTF8.self)
    }

    /// A JSON Web Token: `eyJ` + base64url, a dot, base64url, a dot, base64url (each part at least 10 long).
    private static func jwtEnd(_ bytes: [UInt8], from start: Int) -> Int? {
        guard start + 3 <= bytes.count, bytes[start..<start + 3].elementsEqual(Array("eyJ".utf8)) else { return nil }
        var position = start
        for part in 0..<3 {
            let begin = position
            while position < bytes.count && urlSafe(bytes[position]) { position += 1 }
            guard position - begin >= 10 else { return nil }
            if part < 2 {
                guard position < bytes.count, bytes[position] == UInt8(ascii: ".") else { return nil }
                position += 1
            }
        }
        return position
    }

    private static func pemBlockEnd(_ bytes: [UInt8], from start: Int) -> Int? {
        var position = start + pemBegin.count
        let lineEnd = bytes[position...].firstIndex(of: UInt8(ascii: "\n")) ?? bytes.count
        let header = String(decoding: bytes[position..<lineEnd], as: UTF8.self)
        guard header.contains("PRIVATE KEY") else { return nil }
        while position < bytes.count {
            if bytes[position] == UInt8(ascii: "-"), position + pemEnd.count <= bytes.count,
                bytes[position..<position + pemEnd.count].elementsEqual(pemEnd)
            {
                var close = position + pemEnd.count
                while close + dashes.count <= bytes.count
                    && !bytes[close..<close + dashes.count].elementsEqual(dashes)
                    && bytes[close] != UInt8(ascii: "\n")
                {
                    close += 1
                }
                return min(bytes.count, close + dashes.count)
            }
            position += 1
        }
        return bytes.count
    }

    /// After `scheme://`, the end of `user:password@` when the URL carries a password.
    private static func userInfoEnd(_ bytes: [UInt8], from start: Int) -> Int? {
        var position = start
        var sawColon = false
        while position < bytes.count {
            let b = bytes[position]
            if b == UInt8(ascii: "@") { return sawColon && position > start ? position + 1 : nil }
            if b == UInt8(ascii: ":") { sawColon = true }
            if b == UInt8(ascii: "/") || b == UInt8(ascii: " ") || b == UInt8(ascii: "\n") || b == UInt8(ascii: "\"")
                || b == UInt8(ascii: "?") || b == UInt8(ascii: "#")
            {
                return nil
            }
            position += 1
        }
        return nil
    }
}

extension String {
    /// Every occurrence of `target` replaced, without Foundation.
    public func replacingAll(_ target: String, with replacement: String) -> String {
        guard !target.isEmpty else { return self }
        var result = ""
        var rest = self[...]
        while let range = rest.firstRange(of: target) {
            result += rest[..<range.lowerBound]
            result += replacement
            rest = rest[range.upperBound...]
        }
        result += rest
        return result
    }
}

extension SecretScanner {
    /// Only the environment's secret values replaced: for text whose other bytes must stay exact (a patch).
    public func redactKnownValues(_ text: String) -> String {
        var out = text
        for value in knownValues where out.contains(value) {
            out = out.replacingAll(value, with: Self.redacted)
        }
        return out
    }
}

extension SecretScanner {
    /// A value shaped like a credential whatever its name: a run of 20 or more token characters mixing letters and
    /// digits, or a `key=value` part named like a secret (`AccountKey=...`, `password=...`).
    public static func looksLikeCredential(_ value: String) -> Bool {
        var run = 0
        var letters = false
        var digits = false
        for scalar in value.unicodeScalars {
            let token =
                scalar.properties.isAlphabetic || ("0"..."9").contains(scalar)
                || "+/=_-".unicodeScalars.contains(scalar)
            if token && scalar.isASCII {
                run += 1
                if ("0"..."9").contains(scalar) {
                    digits = true
                } else if scalar.properties.isAlphabetic {
                    letters = true
                }
                if run >= 20 && letters && digits { return true }
            } else {
                run = 0
                letters = false
                digits = false
            }
        }
        return value.split(whereSeparator: { $0 == ";" || $0 == "&" || $0 == "?" }).contains { part in
            guard let equals = part.firstIndex(of: "=") else { return false }
            return isSecretName(String(part[..<equals]))
        }
    }

    /// File names that hold secrets by convention: such untracked files never go into a recorded patch.
    public static func isSecretFileName(_ path: String) -> Bool {
        let name = (path.split(separator: "/").last.map(String.init) ?? path).lowercased()
        if name == ".env" || name.hasPrefix(".env.") || name.hasPrefix(".env-") { return true }
        if [".netrc", "_netrc", ".pypirc", ".npmrc", ".git-credentials", ".pgpass", ".htpasswd"].contains(name) {
            return true
        }
        if name.hasPrefix("id_rsa") || name.hasPrefix("id_dsa") || name.hasPrefix("id_ecdsa")
            || name.hasPrefix("id_ed25519")
        {
            return true
        }
        if name.hasPrefix("credentials") && name.hasSuffix(".json") { return true }
        return [".pem", ".key", ".kdbx", ".p12", ".pfx", ".keystore", ".jks"].contains { name.hasSuffix($0) }
    }

    /// One file's piece of a patch with secrets replaced in the lines it adds (what a restore would write); removed
    /// and context lines are already in git and stay exact, so the patch still applies. Returns the new bytes and
    /// the line numbers, in the new file, that were changed. A binary literal is returned as it is.
    public func redact(patch: [UInt8]) -> (patch: [UInt8], lines: [Int]) {
        let text = String(decoding: patch, as: UTF8.self)
        guard !text.contains("\nGIT binary patch\n") else { return (patch, []) }
        var output: [Substring] = []
        var redacted: [Int] = []
        var newLine = 0
        var inHunk = false
        for line in text.split(separator: "\n", omittingEmptySubsequences: false) {
            if line.hasPrefix("@@ ") {
                inHunk = true
                // @@ -a,b +c,d @@: the hunk's first line in the new file is c.
                let plus = line.split(separator: " ").first { $0.hasPrefix("+") }
                newLine = Int(plus?.dropFirst().split(separator: ",").first ?? "") ?? 0
                output.append(line)
                continue
            }
            guard inHunk, let first = line.first else {
                output.append(line)
                continue
            }
            switch first {
            case "+":
                let content = String(line.dropFirst())
                let clean = redactAssignment(redact(content))
                if clean != content { redacted.append(newLine) }
                output.append(Substring("+" + clean))
                newLine += 1
            case " ":
                output.append(line)
                newLine += 1
            default:
                output.append(line)
            }
        }
        guard !redacted.isEmpty else { return (patch, []) }
        return (Array(output.joined(separator: "\n").utf8), redacted)
    }

    /// `NAME=value`, `NAME: value`, `"name": "value"` with a secret-looking name: the value replaced.
    func redactAssignment(_ line: String) -> String {
        guard let separator = line.firstIndex(where: { $0 == "=" || $0 == ":" }) else { return line }
        var name = line[..<separator].trimmingCharacters(in: .whitespaces)
        for prefix in ["export ", "- ", "set "] where name.hasPrefix(prefix) {
            name = String(name.dropFirst(prefix.count))
        }
        name = name.trimmingCharacters(in: CharacterSet(charactersIn: "\"'"))
        let value = line[line.index(after: separator)...].trimmingCharacters(in: .whitespaces)
        guard !name.isEmpty, !name.contains(" "), Self.isSecretName(name), !value.isEmpty,
            value != "\"\"", value != "''", !value.contains(Self.redacted)
        else { return line }
        let quote = value.first == "\"" || value.first == "'" ? String(value.prefix(1)) : ""
        let trailer = value.hasSuffix(",") ? "," : ""
        return String(line[...separator]) + " " + quote + Self.redacted + quote + trailer
    }
}
