#include "gitml_curl.h"
#include <curl/curl.h>
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <stdio.h>
#include <unistd.h>

static pthread_once_t global_once = PTHREAD_ONCE_INIT;
static void global_init(void) {
    /* With CURLOPT_NOSIGNAL, a write to a connection the server closed must not kill the process (as git does). */
    signal(SIGPIPE, SIG_IGN);
    curl_global_init(CURL_GLOBAL_DEFAULT);
}

void *gitml_http_handle_new(void) {
    pthread_once(&global_once, global_init);
    return curl_easy_init();
}

void gitml_http_handle_free(void *handle) {
    if (handle) curl_easy_cleanup((CURL *)handle);
}

typedef struct transfer {
    CURL *curl;
    const gitml_http_request *request;
    gitml_http_response *response;
    long long sent;
    size_t capacity;
    int body_mode;  /* 0: undecided, 1: to on_body, 2: to memory */
    int overflow;
} transfer;

static int append(unsigned char **buffer, size_t *length, size_t *capacity, const void *bytes, size_t count) {
    if (*length + count + 1 > *capacity) {
        size_t wanted = *capacity ? *capacity : 4096;
        while (wanted < *length + count + 1) wanted *= 2;
        unsigned char *grown = realloc(*buffer, wanted);
        if (!grown) return -1;
        *buffer = grown;
        *capacity = wanted;
    }
    memcpy(*buffer + *length, bytes, count);
    *length += count;
    (*buffer)[*length] = 0;
    return 0;
}

static size_t on_header(char *bytes, size_t size, size_t count, void *user) {
    transfer *t = user;
    size_t n = size * count;
    /* A new status line (after a 100 Continue) starts the headers again. */
    if (n >= 5 && memcmp(bytes, "HTTP/", 5) == 0) t->response->headers_length = 0;
    /* A few dozen lines: a realloc per line is fine; a server sending more than 256 KiB of headers is refused. */
    if (t->response->headers_length + n > 256 * 1024) return 0;
    char *grown = realloc(t->response->headers, t->response->headers_length + n + 1);
    if (!grown) return 0;
    t->response->headers = grown;
    memcpy(grown + t->response->headers_length, bytes, n);
    t->response->headers_length += n;
    grown[t->response->headers_length] = 0;
    return n;
}

static size_t on_write(char *bytes, size_t size, size_t count, void *user) {
    transfer *t = user;
    size_t n = size * count;
    if (t->body_mode == 0) {
        long status = 0;
        curl_easy_getinfo(t->curl, CURLINFO_RESPONSE_CODE, &status);
        t->body_mode = (status >= 200 && status < 300 && t->request->on_body) ? 1 : 2;
    }
    if (t->body_mode == 1) {
        return t->request->on_body(t->request->context, (const unsigned char *)bytes, n) ? n : 0;
    }
    if ((long long)(t->response->body_length + n) > t->request->memory_limit) {
        t->overflow = 1;
        return 0;
    }
    if (append(&t->response->body, &t->response->body_length, &t->capacity, bytes, n) != 0) return 0;
    return n;
}

static size_t on_read(char *buffer, size_t size, size_t count, void *user) {
    transfer *t = user;
    const gitml_http_request *r = t->request;
    long long left = r->upload_length - t->sent;
    if (left <= 0) return 0;
    size_t wanted = size * count;
    if ((long long)wanted > left) wanted = (size_t)left;
    if (r->upload_bytes) {
        memcpy(buffer, r->upload_bytes + t->sent, wanted);
        t->sent += (long long)wanted;
        return wanted;
    }
    for (;;) {
        ssize_t got = pread(r->upload_fd, buffer, wanted, (off_t)(r->upload_offset + t->sent));
        if (got < 0 && errno == EINTR) continue;
        if (got <= 0) return CURL_READFUNC_ABORT; /* the file shrank or failed: never send short */
        t->sent += got;
        return (size_t)got;
    }
}

static int on_seek(void *user, curl_off_t offset, int origin) {
    transfer *t = user;
    if (origin != SEEK_SET) return CURL_SEEKFUNC_CANTSEEK;
    t->sent = offset;
    return CURL_SEEKFUNC_OK;
}

int gitml_http_perform(void *handle, const gitml_http_request *request, gitml_http_response *response) {
    CURL *curl = handle;
    memset(response, 0, sizeof *response);
    transfer t = {.curl = curl, .request = request, .response = response};
    curl_easy_reset(curl);
    curl_easy_setopt(curl, CURLOPT_URL, request->url);
    curl_easy_setopt(curl, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(curl, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT, 15L);
    curl_easy_setopt(curl, CURLOPT_LOW_SPEED_LIMIT, 1024L);
    curl_easy_setopt(curl, CURLOPT_LOW_SPEED_TIME, request->stall_seconds > 0 ? request->stall_seconds : 60L);
    curl_easy_setopt(curl, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(curl, CURLOPT_HEADERDATA, &t);
    curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, on_write);
    curl_easy_setopt(curl, CURLOPT_WRITEDATA, &t);
    curl_easy_setopt(curl, CURLOPT_BUFFERSIZE, 512L * 1024L);
    curl_easy_setopt(curl, CURLOPT_UPLOAD_BUFFERSIZE, 2L * 1024L * 1024L);
    curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, response->error);
    struct curl_slist *headers = NULL;
    for (int i = 0; i <= request->header_count; i++) {
        struct curl_slist *more = curl_slist_append(headers, i < request->header_count ? request->headers[i] : "Expect:");
        if (!more) {
            curl_slist_free_all(headers);
            snprintf(response->error, sizeof response->error, "out of memory for request headers");
            response->curl_code = CURLE_OUT_OF_MEMORY;
            return CURLE_OUT_OF_MEMORY;
        }
        headers = more;
    }
    curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers);
    int has_body = request->upload_length >= 0 && (request->upload_bytes || request->upload_fd >= 0);
    if (has_body) {
        curl_easy_setopt(curl, CURLOPT_UPLOAD, 1L);
        curl_easy_setopt(curl, CURLOPT_READFUNCTION, on_read);
        curl_easy_setopt(curl, CURLOPT_READDATA, &t);
        curl_easy_setopt(curl, CURLOPT_SEEKFUNCTION, on_seek);
        curl_easy_setopt(curl, CURLOPT_SEEKDATA, &t);
        curl_easy_setopt(curl, CURLOPT_INFILESIZE_LARGE, (curl_off_t)request->upload_length);
    }
    if (request->no_body) curl_easy_setopt(curl, CURLOPT_NOBODY, 1L);
    curl_easy_setopt(curl, CURLOPT_CUSTOMREQUEST, request->method);
    CURLcode code = curl_easy_perform(curl);
    curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &response->status);
    /* Nothing of this call (stack buffers, the header list) stays referenced by the handle. */
    curl_easy_setopt(curl, CURLOPT_HTTPHEADER, NULL);
    curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, NULL);
    curl_slist_free_all(headers);
    response->uploaded = t.sent;
    response->curl_code = (int)code;
    if (code != CURLE_OK && t.overflow) {
        snprintf(response->error, sizeof response->error, "the response is larger than %lld bytes",
                 request->memory_limit);
    } else if (code != CURLE_OK && response->error[0] == 0) {
        snprintf(response->error, sizeof response->error, "%s", curl_easy_strerror(code));
    }
    return (int)code;
}

void gitml_http_response_free(gitml_http_response *response) {
    free(response->headers);
    free(response->body);
    response->headers = NULL;
    response->body = NULL;
}
