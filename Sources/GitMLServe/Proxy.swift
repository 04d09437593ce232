import AsyncHTTPClient
import GitMLBasics
import HTTPTypes
import Hummingbird
import NIOCore
import NIOHTTP1
import NIOPosix

/// Forwarding to a backend: path and body unchanged, hop-by-hop headers dropped, connection failures retried only
/// while no byte was sent, timeouts as 504 and anything unreadable as 502.
enum Proxy {
    /// Headers that belong to one connection, not to the request (RFC 9110 section 7.6.1), and ours.
    static let hopByHop: Set<String> = [
        "connection", "keep-alive", "proxy-connection", "proxy-authenticate", "proxy-authorization", "te",
        "trailer", "transfer-encoding", "upgrade", "host", "content-length",
    ]

    /// The largest response body a non-streamed answer may have (it is read whole, so a backend that dies
    /// mid-body is a clean 502 rather than a cut response).
    static let maximumResponseBytes = 64 << 20

    /// The header names a `Connection` header lists: they belong to that connection too.
    static func connectionListed(_ values: [String]) -> Set<String> {
        var names = Set<String>()
        for value in values {
            for item in value.utf8.split(separator: UInt8(ascii: ",")) {
                let trimmed = item.drop { $0 == 0x20 || $0 == 0x09 }.reversed().drop { $0 == 0x20 || $0 == 0x09 }
                let lower = trimmed.reversed().map { $0 >= 0x41 && $0 <= 0x5A ? $0 | 0x20 : $0 }
                if !lower.isEmpty { names.insert(String(decoding: lower, as: UTF8.self)) }
            }
        }
        return names
    }

    /// A backend's answer, read whole, or the head of a stream whose body is still coming.
    enum Answer {
        case whole(status: Int, headers: HTTPHeaders, body: ByteBuffer)
        case stream(status: Int, headers: HTTPHeaders, body: HTTPClientResponse.Body)
    }

    /// Why a request got no answer from its backend.
    struct Failure: Error {
        let status: Int
        let code: String
        let message: String
    }

    /// Sends the request and reads the answer (whole unless the backend streams server-sent events).
    static func forward(
        backend: Backend, method: HTTPRequest.Method, path: String, headers: HTTPFields, body: ByteBuffer,
        timeoutMilliseconds: Int, dropAuthorization: Bool
    ) async throws(Failure) -> Answer {
        var request = HTTPClientRequest(url: backend.base + path)
        request.method = HTTPMethod(rawValue: method.rawValue)
        let listed = connectionListed(headers[values: .connection])
        for field in headers {
            let name = field.name.canonicalName
            if hopByHop.contains(name) || listed.contains(name) || name.hasPrefix("x-git-ml-") { continue }
            if dropAuthorization && name == "authorization" { continue }
            request.headers.add(name: field.name.rawName, value: field.value)
        }
        if method != .get && method != .head { request.body = .bytes(body) }
        let response = try await execute(request, on: backend, timeoutMilliseconds: timeoutMilliseconds)
        let status = Int(response.status.code)
        guard status >= 200 else {
            throw Failure(
                status: 502, code: "bad-gateway",
                message:
                    "\(backend.model)@\(backend.version): the backend answered \(status), which a gateway cannot relay")
        }
        if response.headers.first(name: "content-type")?.lowercased().hasPrefix("text/event-stream") == true {
            return .stream(status: status, headers: response.headers, body: response.body)
        }
        do {
            let whole = try await response.body.collect(upTo: maximumResponseBytes)
            return .whole(status: status, headers: response.headers, body: whole)
        } catch {
            throw classify(error, backend: backend, timeoutMilliseconds: timeoutMilliseconds, headSent: true)
        }
    }

    /// Runs the request; a connection that could not be made (nothing was sent) is tried twice more.
    private static func execute(_ request: HTTPClientRequest, on backend: Backend, timeoutMilliseconds: Int)
        async throws(Failure) -> HTTPClientResponse
    {
        var attempt = 0
        while true {
            do {
                return try await backend.client.execute(request, timeout: .milliseconds(Int64(timeoutMilliseconds)))
            } catch {
                attempt += 1
                if attempt < 3 && isConnectFailure(error) {
                    try? await Task.sleep(for: .milliseconds(50 * attempt))
                    continue
                }
                throw classify(error, backend: backend, timeoutMilliseconds: timeoutMilliseconds, headSent: false)
            }
        }
    }

    /// True for an error raised before any byte of the request could be sent: the connection was refused or
    /// could not be made in time.
    static func isConnectFailure(_ error: Error) -> Bool {
        if error is NIOConnectionError { return true }
        if let error = error as? HTTPClientError, error == .connectTimeout { return true }
        if let error = error as? IOError, error.errnoCode == ECONNREFUSED { return true }
        let text = String(describing: error)
        return text.contains("connectTimeout") || text.contains("Connection refused")
            || text.contains("connectionRefused")
    }

    static func classify(_ error: Error, backend: Backend, timeoutMilliseconds: Int, headSent: Bool) -> Failure {
        let label = "\(backend.model)@\(backend.version)"
        if let error = error as? HTTPClientError {
            if error == .deadlineExceeded || error == .readTimeout || error == .writeTimeout {
                return Failure(
                    status: 504, code: "backend-timeout",
                    message: "\(label): the backend did not answer within \(timeoutMilliseconds) ms")
            }
        }
        if error is NIOTooManyBytesError {
            return Failure(
                status: 502, code: "backend-response-too-large",
                message: "\(label): the backend's answer is larger than \(maximumResponseBytes >> 20) MiB")
        }
        if isConnectFailure(error) {
            return Failure(
                status: 503, code: "backend-down", message: "\(label): the backend does not accept connections")
        }
        return Failure(
            status: 502, code: "bad-gateway",
            message: "\(label): the backend's answer could not be read (\(error))")
    }

    /// One batched KServe v1 call: `{"instances": [...]}` in, exactly as many `predictions` out.
    static func predictBatch(backend: Backend, model: String, instances: [JSONValue]) async -> Result<
        [JSONValue], Batcher.BatchFailure
    > {
        let body = ByteBuffer(bytes: Array(JSONWriter.compact(.object(["instances": .array(instances)])).utf8))
        var headers = HTTPFields()
        headers[.contentType] = "application/json"
        let answer: Answer
        do {
            answer = try await forward(
                backend: backend, method: .post, path: "/v1/models/\(model):predict", headers: headers, body: body,
                timeoutMilliseconds: backend.timeoutMilliseconds, dropAuthorization: true)
        } catch {
            return .failure(
                .init(
                    status: error.status,
                    body: Array(JSONWriter.compact(Routes.errorJSON(error.code, error.message, "")).utf8),
                    contentType: "application/json"))
        }
        guard case .whole(let status, let responseHeaders, let responseBody) = answer else {
            return .failure(
                .init(status: 502, body: Array("a stream answered a batch\n".utf8), contentType: "text/plain"))
        }
        let bytes = Array(responseBody.readableBytesView)
        guard status == 200 else {
            return .failure(
                .init(
                    status: status, body: bytes,
                    contentType: responseHeaders.first(name: "content-type") ?? "application/json"))
        }
        guard let parsed = try? JSONParser.parse(bytes, source: "the backend"),
            let predictions = parsed["predictions"]?.array,
            predictions.count == instances.count
        else {
            let message =
                "\(model)@\(backend.version): the backend's batched answer does not hold \(instances.count) predictions"
            return .failure(
                .init(
                    status: 502, body: Array(JSONWriter.compact(Routes.errorJSON("bad-gateway", message, "")).utf8),
                    contentType: "application/json"))
        }
        return .success(predictions)
    }
}
