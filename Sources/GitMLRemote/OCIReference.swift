import GitMLBasics

/// `oci://host[:port]/repository`: where a remote's manifests and blobs live.
public struct OCIReference: Sendable, Equatable {
    public let host: String
    public let repository: String
    /// http:// instead of https:// (a registry on a private network or loopback).
    public let insecure: Bool

    public init(url: String, insecure: Bool) throws {
        guard url.hasPrefix("oci://") else { throw RemoteError.badURL(url, detail: "a remote URL starts with oci://") }
        let rest = url.dropFirst("oci://".count)
        if let at = rest.prefix(while: { $0 != "/" }).lastIndex(of: "@") {
            throw RemoteError.badURL(
                "oci://…@" + rest[rest.index(after: at)...].prefix { $0 != "/" },
                detail: "credentials do not go in the URL: use docker login or git's credential helper")
        }
        guard let slash = rest.firstIndex(of: "/") else {
            throw RemoteError.badURL(url, detail: "no repository after the host")
        }
        let host = String(rest[..<slash])
        var repository = String(rest[rest.index(after: slash)...])
        while repository.hasSuffix("/") { repository.removeLast() }
        guard Self.isHost(host) else { throw RemoteError.badURL(url, detail: "\(host) is not a host[:port]") }
        guard Self.isRepository(repository) else {
            throw RemoteError.badURL(
                url,
                detail:
                    "\(repository) is not a repository name (lowercase letters, digits, and . _ - between them, / between parts)"
            )
        }
        self.host = host
        self.repository = repository
        self.insecure = insecure
    }

    public var url: String { "oci://\(host)/\(repository)" }
    public var base: String { (insecure ? "http://" : "https://") + host + "/v2/" + repository }

    /// A host name or address with an optional port; no user info, no path, no query.
    static func isHost(_ text: String) -> Bool {
        guard !text.isEmpty, text.count <= 255 else { return false }
        var name = Substring(text)
        if let colon = text.lastIndex(of: ":"), !text.hasSuffix("]") {
            let port = text[text.index(after: colon)...]
            guard let number = Int(port), (1...65535).contains(number) else { return false }
            name = text[..<colon]
        }
        if name.hasPrefix("[") && name.hasSuffix("]") {
            return name.dropFirst().dropLast().allSatisfy { $0.isHexDigit || $0 == ":" || $0 == "." }
        }
        return !name.isEmpty
            && name.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "." || $0 == "-") }
    }

    /// The distribution spec's grammar: `[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*(/[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*)*`.
    static func isRepository(_ text: String) -> Bool {
        guard !text.isEmpty, text.count <= 255 else { return false }
        for part in text.split(separator: "/", omittingEmptySubsequences: false) {
            guard let first = part.first, let last = part.last, Self.isLowerAlnum(first), Self.isLowerAlnum(last) else {
                return false
            }
            var previous: Character = first
            var underscores = 0
            for c in part {
                if Self.isLowerAlnum(c) {
                    underscores = 0
                } else if c == "_" {
                    underscores += 1
                    guard underscores <= 2, previous == "_" || Self.isLowerAlnum(previous) else { return false }
                } else if c == "." {
                    guard Self.isLowerAlnum(previous) else { return false }
                } else if c == "-" {
                    guard Self.isLowerAlnum(previous) || previous == "-" else { return false }
                } else {
                    return false
                }
                previous = c
            }
        }
        return true
    }

    private static func isLowerAlnum(_ c: Character) -> Bool {
        c.isASCII && (c.isNumber || (c.isLetter && c.isLowercase))
    }

    /// A tag: `[A-Za-z0-9_][A-Za-z0-9._-]{0,127}`.
    public static func isTag(_ text: String) -> Bool {
        guard let first = text.first, text.count <= 128, first.isASCII,
            first.isLetter || first.isNumber || first == "_"
        else { return false }
        return text.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "_" || $0 == "." || $0 == "-") }
    }
}
