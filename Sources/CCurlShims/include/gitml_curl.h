#ifndef GITML_CURL_H
#define GITML_CURL_H
#include <stddef.h>

/// One HTTP exchange through a libcurl easy handle (kept between calls, so its connection is reused). libcurl's
/// setopt is variadic, which Swift cannot call: this file sets every option and runs the transfer.
typedef struct gitml_http_request {
    const char *method;
    const char *url;
    /// "Name: value" lines.
    const char *const *headers;
    int header_count;
    /// The body: `upload_length` bytes of `upload_fd` from `upload_offset` (read with pread), or `upload_bytes`.
    int upload_fd;
    long long upload_offset;
    long long upload_length;
    const unsigned char *upload_bytes;
    /// A 2xx body goes to `on_body` when it is set (it returns 0 to stop the transfer); any other body, and a 2xx
    /// body without `on_body`, is kept in memory up to `memory_limit` bytes (more stops the transfer).
    int (*on_body)(void *context, const unsigned char *bytes, size_t count);
    void *context;
    long long memory_limit;
    /// No response within this many seconds of silence is a failure (a stalled server).
    long stall_seconds;
    /// HEAD-like: no body is expected.
    int no_body;
} gitml_http_request;

typedef struct gitml_http_response {
    long status;
    /// The response's header lines, CRLF-separated (malloc'd; free with gitml_http_response_free).
    char *headers;
    size_t headers_length;
    unsigned char *body;
    size_t body_length;
    /// Bytes of the request body libcurl sent.
    long long uploaded;
    /// 0, or libcurl's error code with its message.
    int curl_code;
    char error[256];
} gitml_http_response;

void *gitml_http_handle_new(void);
void gitml_http_handle_free(void *handle);
/// 0 when the exchange completed (any status), else the libcurl error (also in response->curl_code).
int gitml_http_perform(void *handle, const gitml_http_request *request, gitml_http_response *response);
void gitml_http_response_free(gitml_http_response *response);

#endif
