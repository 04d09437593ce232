"""The gateway tests' HTTP client, stdlib only (prometheus_client for `metrics`). Prints one JSON document.

  loop URL SECONDS BODY        sequential POSTs for SECONDS: {"ok": n, "failed": [[status, body]...], "versions": [...]}
  concurrent URL N BODY [HDR]  N POSTs at once: {"answers": [[status, body, version]...]}
  stream URL BODY              an SSE POST: {"status": s, "chunks": [[arrival, data]...], "headers_at": t}
  latency URL N BODY           N sequential POSTs: {"ok": n, "p50": ms, "p99": ms, "versions": {"1": n}}
  keyed URL N BODY             N POSTs with x-user-id user-0..N-1: {"versions": ["1", "2", ...]} in key order
  metrics URL                  GET /metrics parsed by prometheus_client: {"family": {"labels-json": value}}
"""
import http.client
import json
import sys
import threading
import time
from urllib.parse import urlsplit


def post(url, body, headers=None, timeout=30):
    parts = urlsplit(url)
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=timeout)
    try:
        connection.request("POST", parts.path, body=body.encode(),
                           headers={"content-type": "application/json", **(headers or {})})
        response = connection.getresponse()
        return response.status, response.read().decode(errors="replace"), response.getheader("x-git-ml-version")
    except Exception as error:  # a refused or reset connection is a failure too
        return 0, repr(error), None
    finally:
        connection.close()


def main():
    command, url = sys.argv[1], sys.argv[2]
    if command == "loop":
        seconds, body = float(sys.argv[3]), sys.argv[4]
        ok, failed, versions = 0, [], []
        end = time.time() + seconds
        while time.time() < end:
            status, text, version = post(url, body)
            if status == 200:
                ok += 1
                if not versions or versions[-1] != version:
                    versions.append(version)
            elif len(failed) < 5:
                failed.append([status, text])
        print(json.dumps({"ok": ok, "failed": failed, "versions": versions}))
    elif command == "latency":
        count, body = int(sys.argv[3]), sys.argv[4]
        times, ok, versions = [], 0, {}
        for _ in range(count):
            start = time.perf_counter()
            status, _, version = post(url, body)
            times.append((time.perf_counter() - start) * 1000)
            if status == 200:
                ok += 1
                versions[version] = versions.get(version, 0) + 1
        times.sort()
        print(json.dumps({"ok": ok, "p50": times[len(times) // 2], "p99": times[int(len(times) * 0.99) - 1],
                          "versions": versions}))
    elif command == "keyed":
        count, body = int(sys.argv[3]), sys.argv[4]
        print(json.dumps({"versions": [post(url, body, {"x-user-id": "user-%d" % i})[2] for i in range(count)]}))
    elif command == "concurrent":
        count, body = int(sys.argv[3]), sys.argv[4]
        headers = json.loads(sys.argv[5]) if len(sys.argv) > 5 else {}
        answers = [None] * count

        def one(i):
            answers[i] = list(post(url, body.replace("INDEX", str(i)), headers))

        threads = [threading.Thread(target=one, args=(i,)) for i in range(count)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        print(json.dumps({"answers": answers}))
    elif command == "stream":
        parts = urlsplit(url)
        connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
        start = time.time()
        connection.request("POST", parts.path, body=sys.argv[3].encode(), headers={"content-type": "application/json"})
        response = connection.getresponse()
        headers_at = time.time() - start
        chunks = []
        while True:
            line = response.fp.readline()
            if not line:
                break
            line = line.decode().strip()
            if line.startswith("data: "):
                chunks.append([time.time(), line[6:]])
                if line == "data: [DONE]":
                    break
        print(json.dumps({"status": response.status, "chunks": chunks, "headers_at": headers_at}))
    elif command == "metrics":
        from prometheus_client.parser import text_string_to_metric_families
        parts = urlsplit(url)
        connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
        connection.request("GET", parts.path)
        text = connection.getresponse().read().decode()
        families = {}
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                key = json.dumps(dict(sorted(sample.labels.items())))
                families.setdefault(sample.name, {})[key] = sample.value
        print(json.dumps(families))


if __name__ == "__main__":
    main()
