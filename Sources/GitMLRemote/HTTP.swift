import CCurlShims
import GitMLBasics

#if canImport(Glibc)
    import Glibc
#endif

/// A response: status, headers (names lowercased, in order) and the body when it was kept in memory.
public struct HTTPResponse: Sendable {
    public var status: Int
    public var headers: [(name: String, value: String)]
    public var body: [UInt8]

    /// The first value of a header (case-insensitive name).
    public func header(_ name: String) -> String? {
        let wanted = name.lowercased()
        return headers.first { $0.name == wanted }?.value
    }

    static func parseHeaders(_ text: String) -> [(name: String, value: String)] {
        text.split(whereSeparator: \.isNewline).dropFirst().compactMap { line in
            guard let colon = line.firstIndex(of: ":") else { return nil }
            let name = line[..<colon].trimmingCharacters(in: .whitespaces).lowercased()
            let value = line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
            return (name, value)
        }
    }
}

/// What a request sends.
public enum HTTPBody {
    case none
    case bytes([UInt8])
    /// `length` bytes of the open file `fd` from `offset`, streamed (never read into memory whole).
    case file(fd: Int32, offset: Int64, length: Int64)
}

/// One connection's worth of HTTP (libcurl's easy interface; its connection is kept and reused between requests).
/// Not thread-safe: use one per thread.
public final class HTTPConnection {
    private let handle: UnsafeMutableRawPointer
    /// Bodies kept in memory (errors, manifests, tokens) are capped at this many bytes.
    public static let memoryLimit: Int64 = 8 << 20

    public init() throws {
        guard let handle = gitml_http_handle_new() else {
            throw RemoteError.transport(host: "", detail: "libcurl could not make a handle")
        }
        self.handle = handle
    }

    deinit { gitml_http_handle_free(handle) }

    /// Sends one request and returns the response; a 2xx body goes to `sink` when given (it returns false to stop).
    /// Throws only when no complete response arrived (connection refused, reset, stalled, the sink stopped).
    public func send(
        _ method: String, _ url: String, headers: [String] = [], body: HTTPBody = .none,
        sink: ((UnsafeRawBufferPointer) -> Bool)? = nil, stallSeconds: Int = 60
    ) throws -> HTTPResponse {
        final class Sink {
            let write: (UnsafeRawBufferPointer) -> Bool
            init(_ write: @escaping (UnsafeRawBufferPointer) -> Bool) { self.write = write }
        }
        let box = sink.map { Sink($0) }
        let callback: @convention(c) (UnsafeMutableRawPointer?, UnsafePointer<UInt8>?, Int) -> Int32 = {
            context, bytes, count in
            guard let context, let bytes else { return 0 }
            let sink = Unmanaged<Sink>.fromOpaque(context).takeUnretainedValue()
            return sink.write(UnsafeRawBufferPointer(start: bytes, count: count)) ? 1 : 0
        }
        var response = gitml_http_response()
        let code: Int32 = withExtendedLifetime(box) {
            Self.withCStrings(headers) { headerPointers in
                method.withCString { methodPointer in
                    url.withCString { urlPointer in
                        var request = gitml_http_request()
                        request.method = methodPointer
                        request.url = urlPointer
                        request.header_count = Int32(headers.count)
                        request.upload_fd = -1
                        request.upload_length = -1
                        request.memory_limit = Self.memoryLimit
                        request.stall_seconds = stallSeconds
                        request.no_body = method == "HEAD" ? 1 : 0
                        if let box {
                            request.on_body = callback
                            request.context = Unmanaged.passUnretained(box).toOpaque()
                        }
                        return headerPointers.withUnsafeBufferPointer { pointers in
                            request.headers = pointers.baseAddress.map { UnsafePointer($0) }
                            switch body {
                            case .none:
                                return gitml_http_perform(handle, &request, &response)
                            case .bytes(let bytes):
                                return bytes.withUnsafeBufferPointer { buffer in
                                    // An empty body is still a body: Content-Length: 0.
                                    var empty: UInt8 = 0
                                    return withUnsafePointer(to: &empty) { nothing in
                                        request.upload_bytes = buffer.baseAddress ?? nothing
                                        request.upload_length = Int64(bytes.count)
                                        return gitml_http_perform(handle, &request, &response)
                                    }
                                }
                            case .file(let fd, let offset, let length):
                                request.upload_fd = fd
                                request.upload_offset = offset
                                request.upload_length = length
                                return gitml_http_perform(handle, &request, &response)
                            }
                        }
                    }
                }
            }
        }
        defer { gitml_http_response_free(&response) }
        guard code == 0 else {
            let detail = withUnsafeBytes(of: response.error) { raw in
                String(decoding: raw.prefix { $0 != 0 }, as: UTF8.self)
            }
            throw RemoteError.transport(host: Self.host(of: url), detail: detail)
        }
        let headerText =
            response.headers.map {
                String(decoding: UnsafeRawBufferPointer(start: $0, count: response.headers_length), as: UTF8.self)
            }
            ?? ""
        let bodyBytes =
            response.body.map { Array(UnsafeBufferPointer(start: $0, count: response.body_length)) } ?? []
        return HTTPResponse(status: response.status, headers: HTTPResponse.parseHeaders(headerText), body: bodyBytes)
    }

    /// Scheme, lowercased host and port (the scheme's default when none is written): what must match for
    /// credentials to be sent.
    static func origin(of url: String) -> String {
        let scheme = url.hasPrefix("https://") ? "https" : (url.hasPrefix("http://") ? "http" : "")
        var host = host(of: url).lowercased()
        if let at = host.lastIndex(of: "@") { host = String(host[host.index(after: at)...]) }
        let hasPort = host.hasSuffix("]") ? false : host.contains(":")
        if !hasPort || host.hasPrefix("[") && !host.contains("]:") { host += scheme == "https" ? ":443" : ":80" }
        return scheme + "://" + host
    }

    /// The host (and port) of a URL, for messages.
    static func host(of url: String) -> String {
        guard let start = url.range(of: "://")?.upperBound else { return url }
        let rest = url[start...]
        return String(rest.prefix { $0 != "/" && $0 != "?" && $0 != "#" })
    }

    private static func withCStrings<T>(_ strings: [String], _ body: ([UnsafePointer<CChar>?]) -> T) -> T {
        let pointers: [UnsafeMutablePointer<CChar>?] = strings.map { strdup($0) }
        defer { for pointer in pointers { free(pointer) } }
        return body(pointers.map { $0.map { UnsafePointer($0) } })
    }

}
