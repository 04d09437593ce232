import CSystemShims
import Foundation
import GitMLBasics
import GitMLStore

#if canImport(Glibc)
    import Glibc
#endif

/// What every connection to one remote shares: the credential (looked up once, on the first 401) and the
/// authorization header in force (Basic, or a Bearer token for the scopes asked so far). Thread-safe.
public final class RegistrySession: @unchecked Sendable {
    public let reference: OCIReference
    let credentials: CredentialSource
    private let lock = NSLock()
    private var credential: Credential??
    private var authorization: String?
    private var scopes: Set<String> = []

    public init(reference: OCIReference, credentials: CredentialSource) {
        self.reference = reference
        self.credentials = credentials
    }

    var currentAuthorization: String? { lock.withLock { authorization } }

    private func lookUpCredential() -> Credential? {
        if let credential { return credential }
        let found = credentials.credential(host: reference.host, insecure: reference.insecure)
        credential = .some(found)
        return found
    }

    /// Answers a 401's challenge: Basic with the credential, or the Bearer token flow (realm, service, scope),
    /// asking for every scope seen so far so one token serves them all. Throws when there is nothing to answer with.
    func authenticate(challenge: String?, connection: HTTPConnection, failed: String?) throws {
        try lock.withLock {
            let host = reference.host
            guard let challenge, let parsed = Self.parse(challenge: challenge) else {
                throw RemoteError.unauthorized(host: host, detail: "the registry sent no usable WWW-Authenticate")
            }
            // Every scope asked for so far goes into the next token, so workers with different needs share one.
            let known = scopes.count
            if let scope = parsed.parameters["scope"] {
                for item in scope.split(separator: " ") { scopes.insert(String(item)) }
            }
            // Another thread may have answered the same challenge already.
            if let authorization, authorization != failed, scopes.count == known { return }
            // Over plain HTTP, credentials go only to this machine or a private network, never across the internet.
            if reference.insecure && !Self.isPrivate(host) {
                throw RemoteError.unauthorized(
                    host: host,
                    detail: "it asks for credentials over plain HTTP; use an https remote (drop insecure_http)")
            }
            switch parsed.scheme {
            case "basic":
                guard let credential = lookUpCredential() else {
                    throw RemoteError.unauthorized(host: host, detail: "no credentials found for \(host)")
                }
                if authorization == credential.basic {
                    throw RemoteError.unauthorized(
                        host: host, detail: "the registry refused \(credential.user)'s credentials")
                }
                authorization = credential.basic
            case "bearer":
                guard let realm = parsed.parameters["realm"],
                    realm.hasPrefix("https://")
                        || (reference.insecure && realm.hasPrefix("http://")
                            && Self.isPrivate(HTTPConnection.host(of: realm)))
                else {
                    throw RemoteError.unauthorized(host: host, detail: "the token realm is missing or not https")
                }
                var query: [String] = []
                if let service = parsed.parameters["service"] { query.append("service=" + Self.percent(service)) }
                for scope in scopes.sorted() { query.append("scope=" + Self.percent(scope)) }
                let url = realm + (realm.contains("?") ? "&" : "?") + query.joined(separator: "&")
                let credential = lookUpCredential()
                let response = try connection.send(
                    "GET", url, headers: credential.map { ["Authorization: \($0.basic)"] } ?? [])
                guard response.status == 200, let json = try? JSONParser.parse(response.body, source: "token"),
                    let token = json["token"]?.string ?? json["access_token"]?.string, !token.isEmpty,
                    token.utf8.count < 16 << 10, token.utf8.allSatisfy({ $0 > 0x20 && $0 < 0x7F })
                else {
                    throw RemoteError.unauthorized(
                        host: host,
                        detail: credential == nil
                            ? "no credentials found for \(host), and the token service refused anonymous access"
                            : "the token service refused \(credential?.user ?? "")'s credentials (HTTP \(response.status))"
                    )
                }
                let bearer = "Bearer " + token
                if authorization == bearer {
                    throw RemoteError.unauthorized(
                        host: host, detail: "the token does not grant \(scopes.sorted().joined(separator: " "))")
                }
                authorization = bearer
            default:
                throw RemoteError.unauthorized(host: host, detail: "unsupported authentication scheme \(parsed.scheme)")
            }
        }
    }

    /// Loopback, a private network (RFC 1918, unique local IPv6) or `localhost`: where plain HTTP may carry
    /// credentials.
    static func isPrivate(_ hostAndPort: String) -> Bool {
        var host = hostAndPort.lowercased()
        if host.hasPrefix("["), let end = host.firstIndex(of: "]") {
            host = String(host[host.index(after: host.startIndex)..<end])
            return host == "::1" || host.hasPrefix("fc") || host.hasPrefix("fd")
        }
        if let colon = host.lastIndex(of: ":") { host = String(host[..<colon]) }
        if host == "localhost" { return true }
        // Exactly a dotted quad of plain decimals ("010.0.0.1" is octal to some parsers; "10.0.0.1.evil" a name).
        let labels = host.split(separator: ".", omittingEmptySubsequences: false)
        guard labels.count == 4,
            labels.allSatisfy({
                !$0.isEmpty && $0.count <= 3 && $0.allSatisfy(\.isNumber) && ($0 == "0" || $0.first != "0")
            })
        else { return false }
        let parts = labels.compactMap { Int($0) }
        guard parts.count == 4, parts.allSatisfy({ (0...255).contains($0) }) else { return false }
        return parts[0] == 127 || parts[0] == 10 || (parts[0] == 172 && (16...31).contains(parts[1]))
            || (parts[0] == 192 && parts[1] == 168)
    }

    /// `Bearer realm="https://auth",service="reg",scope="repository:a:pull,push"` into its scheme and parameters.
    static func parse(challenge: String) -> (scheme: String, parameters: [String: String])? {
        let text = challenge.trimmingCharacters(in: .whitespaces)
        guard let space = text.firstIndex(of: " ") else {
            return text.isEmpty ? nil : (text.lowercased(), [:])
        }
        let scheme = text[..<space].lowercased()
        var parameters: [String: String] = [:]
        var rest = text[text.index(after: space)...]
        while !rest.isEmpty {
            rest = rest.drop { $0 == " " || $0 == "," }
            guard let equals = rest.firstIndex(of: "=") else { break }
            let key = rest[..<equals].trimmingCharacters(in: .whitespaces).lowercased()
            rest = rest[rest.index(after: equals)...]
            var value = ""
            if rest.first == "\"" {
                rest = rest.dropFirst()
                while let c = rest.first, c != "\"" {
                    if c == "\\", let next = rest.dropFirst().first {
                        value.append(next)
                        rest = rest.dropFirst(2)
                    } else {
                        value.append(c)
                        rest = rest.dropFirst()
                    }
                }
                rest = rest.dropFirst()
            } else {
                let end = rest.firstIndex(of: ",") ?? rest.endIndex
                value = rest[..<end].trimmingCharacters(in: .whitespaces)
                rest = rest[end...]
            }
            parameters[key] = value
        }
        return (scheme, parameters)
    }

    static func percent(_ text: String) -> String {
        var allowed = CharacterSet.alphanumerics
        allowed.insert(charactersIn: "-._~")
        return text.addingPercentEncoding(withAllowedCharacters: allowed) ?? text
    }
}

/// The OCI distribution API for one repository, over one connection (use one per thread). Every request is
/// answered with authentication on a 401 and retried once; registry error JSON becomes a `RemoteError`.
public final class RegistryClient {
    public let session: RegistrySession
    let http: HTTPConnection
    var reference: OCIReference { session.reference }

    public static let manifestType = "application/vnd.oci.image.manifest.v1+json"

    public init(session: RegistrySession) throws {
        self.session = session
        http = try HTTPConnection()
    }

    /// Sends with the session's authorization; on a 401, authenticates and sends once more.
    func send(
        _ method: String, _ url: String, headers: [String] = [], body: HTTPBody = .none,
        sink: ((UnsafeRawBufferPointer) -> Bool)? = nil
    ) throws -> HTTPResponse {
        // Credentials go to the registry's own host only (an upload location or a redirect may name another).
        let authorize = HTTPConnection.origin(of: url) == HTTPConnection.origin(of: reference.base)
        var attempt = 0
        while true {
            let authorization = authorize ? session.currentAuthorization : nil
            let all = headers + (authorization.map { ["Authorization: \($0)"] } ?? [])
            let response = try http.send(method, url, headers: all, body: body, sink: sink)
            guard response.status == 401, authorize, attempt == 0 else { return response }
            attempt += 1
            try session.authenticate(
                challenge: response.header("www-authenticate"), connection: http, failed: authorization)
        }
    }

    /// Throws the registry's error for a response that is not one of `expected`.
    func check(_ response: HTTPResponse, _ expected: Set<Int>, action: String) throws {
        guard !expected.contains(response.status) else { return }
        var code = ""
        var detail = ""
        if let json = try? JSONParser.parse(response.body, source: "registry error"),
            let first = json["errors"]?.array?.first
        {
            code = first["code"]?.string ?? ""
            detail = TerminalText.escape(String((first["message"]?.string ?? "").prefix(200)))
        }
        if response.status == 401 {
            throw RemoteError.unauthorized(host: reference.host, detail: detail.isEmpty ? "HTTP 401" : detail)
        }
        throw RemoteError.registry(
            host: reference.host, status: response.status, code: code, detail: detail, action: action)
    }

    // MARK: Blobs

    /// The blob's size when the repository has it, nil when it does not.
    public func blobSize(_ digest: String) throws -> Int64? {
        let response = try send("HEAD", "\(reference.base)/blobs/sha256:\(digest)")
        if response.status == 404 { return nil }
        // A registry that serves blobs from elsewhere answers HEAD with a redirect: the blob is there.
        if [301, 302, 303, 307, 308].contains(response.status) { return -1 }
        try check(response, [200], action: "checking blob \(digest.prefix(12))")
        return response.header("content-length").flatMap { Int64($0) } ?? -1
    }

    public enum Upload: String, Sendable {
        case present = "already there"
        case mounted = "mounted"
        case sent = "sent"
    }

    /// Uploads the object file at `path` (whose sha256 is `digest`) unless the repository has it: mounted from
    /// `mountFrom` (another repository of the same registry) when given, else one POST and one monolithic PUT
    /// streamed from the file, falling back to chunked PATCHes when the registry refuses the monolithic form.
    public func upload(_ digest: String, path: String, size expected: Int64, mountFrom: String?) throws -> Upload {
        if try blobSize(digest) != nil { return .present }
        let fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC)
        guard fd >= 0 else { throw StoreError("open", path: path) }
        defer { close(fd) }
        var info = stat()
        guard fstat(fd, &info) == 0 else { throw StoreError("stat", path: path) }
        let size = Int64(info.st_size)
        // The manifest will say `expected`: a stored object of another size is damaged, and is not sent.
        guard size == expected else {
            throw RemoteError.digestMismatch(
                what: ".mlops/cache/objects/\(digest.prefix(12))", expected: "\(expected) bytes", got: "\(size) bytes")
        }
        guard let location = try startUpload(digest, mountFrom: mountFrom) else { return .mounted }
        let put = try send(
            "PUT", Self.adding("digest=sha256:\(digest)", to: location),
            headers: ["Content-Type: application/octet-stream"], body: .file(fd: fd, offset: 0, length: size))
        if put.status == 201 { return .sent }
        // Some registries (Google Artifact Registry's old API, some proxies) take chunks only.
        guard [400, 405, 411, 413, 416, 501].contains(put.status), !Self.isDigestError(put) else {
            try check(put, [201], action: "uploading \(digest.prefix(12))")
            return .sent
        }
        guard let again = try startUpload(digest, mountFrom: nil) else { return .mounted }
        return try chunked(digest, fd: fd, size: size, location: again)
    }

    /// Uploads a small blob held in memory (a config, a run record) unless the repository has it.
    public func upload(_ digest: String, bytes: [UInt8], mountFrom: String?) throws -> Upload {
        if try blobSize(digest) != nil { return .present }
        guard let location = try startUpload(digest, mountFrom: mountFrom) else { return .mounted }
        let put = try send(
            "PUT", Self.adding("digest=sha256:\(digest)", to: location),
            headers: ["Content-Type: application/octet-stream"], body: .bytes(bytes))
        try check(put, [201], action: "uploading \(digest.prefix(12))")
        return .sent
    }

    /// Opens an upload session (its location), or mounts the blob from `mountFrom` (nil: nothing left to send).
    private func startUpload(_ digest: String, mountFrom: String?) throws -> String? {
        var start = "\(reference.base)/blobs/uploads/"
        if let mountFrom { start += "?mount=sha256:\(digest)&from=\(RegistrySession.percent(mountFrom))" }
        let opened = try send("POST", start, body: .bytes([]))
        if opened.status == 201 { return nil }
        try check(opened, [202], action: "starting the upload of \(digest.prefix(12))")
        return try location(opened)
    }

    /// Chunk size for PATCH uploads.
    static let chunk: Int64 = 32 << 20

    private func chunked(_ digest: String, fd: Int32, size: Int64, location: String) throws -> Upload {
        var location = location
        var offset: Int64 = 0
        while offset < size {
            let length = min(Self.chunk, size - offset)
            let response = try send(
                "PATCH", location,
                headers: ["Content-Type: application/octet-stream", "Content-Range: \(offset)-\(offset + length - 1)"],
                body: .file(fd: fd, offset: offset, length: length))
            try check(response, [202], action: "uploading \(digest.prefix(12)) at byte \(offset)")
            location = try self.location(response)
            offset += length
        }
        let done = try send("PUT", Self.adding("digest=sha256:\(digest)", to: location), body: .bytes([]))
        try check(done, [201], action: "finishing the upload of \(digest.prefix(12))")
        return .sent
    }

    /// Streams the blob into `store` under its digest: to a temporary file beside the objects, hashed while it
    /// arrives, renamed into place only when the sha256 matches (nothing is left under any name otherwise).
    /// Redirects (a registry handing blobs to S3 or a CDN) are followed; credentials never cross to another host.
    public func download(_ digest: String, size expected: Int64?, into store: ObjectStore) throws -> Int64 {
        let target = store.path(for: digest)
        try AtomicFile.makeDirectories(store.directory)
        let temporary = AtomicFile.temporaryName(for: target)
        let fd = open(temporary, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw StoreError("create", path: temporary) }
        var kept = false
        defer {
            close(fd)
            if !kept { unlink(temporary) }
        }
        // Received bytes are hashed by a trailing thread reading them back from the page cache, and handed to the
        // disk as they come, so neither the digest nor the final fsync waits for the whole blob.
        let reader = open(temporary, O_RDONLY | O_CLOEXEC)
        guard reader >= 0 else { throw StoreError("open", path: temporary) }
        defer { close(reader) }
        let hasher = try TrailingHasher(fd: reader)
        var finished = false
        defer { if !finished { hasher.cancel() } }
        var written: Int64 = 0
        var announced: Int64 = 0
        var flushed: Int64 = 0
        var writeError: Int32 = 0
        var tooLong = false
        let sink: (UnsafeRawBufferPointer) -> Bool = { bytes in
            if let expected, written + Int64(bytes.count) > expected {
                tooLong = true  // more bytes than the lineage says the blob has
                return false
            }
            guard let base = bytes.baseAddress else { return true }
            var offset = 0
            while offset < bytes.count {
                let n = write(fd, base + offset, bytes.count - offset)
                if n < 0 {
                    if errno == EINTR { continue }
                    writeError = errno
                    return false
                }
                offset += n
            }
            written += Int64(bytes.count)
            if written - announced >= 4 << 20 {
                hasher.advance(to: written)
                announced = written
            }
            if written - flushed >= 32 << 20 {
                _ = gitml_start_writeback(fd, flushed, written - flushed)
                flushed = written
            }
            return true
        }
        var url = "\(reference.base)/blobs/sha256:\(digest)"
        var response: HTTPResponse
        var hops = 0
        while true {
            do {
                response = try send("GET", url, sink: sink)
            } catch {
                if writeError != 0 { throw StoreError("write", path: temporary, errno: writeError) }
                if tooLong {
                    throw RemoteError.digestMismatch(
                        what: "blob \(digest.prefix(12))", expected: "\(expected ?? 0) bytes", got: "more")
                }
                throw error
            }
            guard [301, 302, 303, 307, 308].contains(response.status), hops < 5,
                let next = response.header("location")
            else { break }
            let resolved = try resolve(next, against: url)
            guard resolved.hasPrefix("https://") || (reference.insecure && resolved.hasPrefix("http://")) else {
                throw RemoteError.registry(
                    host: reference.host, status: response.status, code: "", detail: "redirected to a non-https URL",
                    action: "downloading \(digest.prefix(12))")
            }
            url = resolved  // `send` keeps credentials from any host but the registry's
            hops += 1
        }
        if response.status == 404 {
            throw RemoteError.notOnRemote(what: "blob \(digest.prefix(12))", remote: reference.url)
        }
        try check(response, [200], action: "downloading \(digest.prefix(12))")
        let got = try hasher.finish(total: written)
        finished = true
        guard got == digest else {
            throw RemoteError.digestMismatch(what: "blob \(digest.prefix(12))", expected: digest, got: got)
        }
        guard fsync(fd) == 0 else { throw StoreError("sync", path: temporary) }
        fchmod(fd, 0o444)
        guard rename(temporary, target) == 0 else { throw StoreError("rename", path: temporary) }
        kept = true
        try AtomicFile.syncDirectory(store.directory)
        return written
    }

    // MARK: Manifests

    /// The digest the tag points at, or nil when there is no such tag.
    public func manifestDigest(_ tag: String) throws -> String? {
        let response = try send(
            "HEAD", "\(reference.base)/manifests/\(tag)", headers: ["Accept: \(Self.manifestType)"])
        if response.status == 404 { return nil }
        try check(response, [200], action: "checking \(tag)")
        if let value = response.header("docker-content-digest"), value.hasPrefix("sha256:"),
            SHA256.isDigest(value.dropFirst("sha256:".count))
        {
            return String(value.dropFirst("sha256:".count))
        }
        // No digest header (some registries): the bytes themselves say.
        return try manifest(tag).map { try SHA256.hex(of: $0) }
    }

    /// The manifest's bytes exactly as served, checked against the digest the registry states.
    public func manifest(_ tag: String) throws -> [UInt8]? {
        let response = try send(
            "GET", "\(reference.base)/manifests/\(tag)", headers: ["Accept: \(Self.manifestType)"])
        if response.status == 404 { return nil }
        try check(response, [200], action: "fetching \(tag)")
        if let stated = response.header("docker-content-digest"), stated.hasPrefix("sha256:") {
            let got = try SHA256.hex(of: response.body)
            guard "sha256:" + got == stated else {
                throw RemoteError.digestMismatch(what: "manifest \(tag)", expected: stated, got: "sha256:" + got)
            }
        }
        return response.body
    }

    /// Puts the manifest bytes (hashed as sent) under `tag`; returns their digest.
    @discardableResult
    public func putManifest(_ bytes: [UInt8], tag: String) throws -> String {
        let digest = try SHA256.hex(of: bytes)
        let response = try send(
            "PUT", "\(reference.base)/manifests/\(tag)", headers: ["Content-Type: \(Self.manifestType)"],
            body: .bytes(bytes))
        try check(response, [201], action: "pushing manifest \(tag)")
        if let stated = response.header("docker-content-digest"), stated != "sha256:" + digest {
            throw RemoteError.digestMismatch(what: "manifest \(tag)", expected: "sha256:" + digest, got: stated)
        }
        return digest
    }

    // MARK: URLs

    private func location(_ response: HTTPResponse) throws -> String {
        guard let location = response.header("location"), !location.isEmpty else {
            throw RemoteError.registry(
                host: reference.host, status: response.status, code: "", detail: "no Location header",
                action: "uploading")
        }
        let resolved = try resolve(location, against: reference.base)
        // An https registry's upload must not continue in clear text (a proxy that forgot X-Forwarded-Proto).
        guard resolved.hasPrefix("https://") || (reference.insecure && resolved.hasPrefix("http://")) else {
            throw RemoteError.registry(
                host: reference.host, status: response.status, code: "",
                detail: "the upload location is not https", action: "uploading")
        }
        return resolved
    }

    /// An absolute URL for a Location that may be absolute or relative to the host.
    func resolve(_ location: String, against url: String) throws -> String {
        if location.hasPrefix("http://") || location.hasPrefix("https://") {
            // An authority with user info, a fragment or odd characters could name one host to us and another to
            // curl: refused outright.
            let authority = HTTPConnection.host(of: location)
            guard !authority.isEmpty,
                authority.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || ".-:[]".contains($0)) }),
                !location.contains("#"), !location.contains("\\"), !location.contains(where: \.isWhitespace)
            else {
                throw RemoteError.registry(
                    host: reference.host, status: 0, code: "",
                    detail: "refused an odd Location (\(authority.prefix(40)))",
                    action: "following a redirect")
            }
            return location
        }
        guard location.hasPrefix("/"), let scheme = url.range(of: "://") else {
            throw RemoteError.registry(
                host: reference.host, status: 0, code: "", detail: "cannot follow Location \(location.prefix(80))",
                action: "following a redirect")
        }
        let afterScheme = url[scheme.upperBound...]
        let host = afterScheme.prefix { $0 != "/" }
        return url[..<scheme.upperBound] + host + location
    }

    /// `url` with one more query parameter (a Location often carries `?_state=...` already).
    static func adding(_ parameter: String, to url: String) -> String {
        url + (url.contains("?") ? "&" : "?") + parameter
    }

    private static func isDigestError(_ response: HTTPResponse) -> Bool {
        String(decoding: response.body, as: UTF8.self).contains("DIGEST_INVALID")
    }
}
