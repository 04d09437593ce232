"""A model server for the gateway's tests, stdlib only. Its behaviour is chosen per request by the x-test header:

  (none)              KServe v1: each prediction is the sum of its instance's numbers plus the model file's offset
  slow                answers after 2 s
  garbage             writes bytes that are not HTTP, then closes
  die-before-headers  kills itself before answering
  die-mid-body        sends the head and part of the body, then kills itself
  wrong-count         answers one prediction fewer than it was sent (so does an instance [-1])

The model file may also hold, for rollout tests: "fail_every": n (every n-th predict answers 500), "delay_ms": d
(every predict waits d ms) and "hang": true (predicts never answer; health still does).

POST /v1/chat/completions with "stream": true sends three events 0.4 s apart, then a usage event and [DONE];
without it, one answer with a usage object. GET /calls says how many predict calls came and their sizes.
"""
import argparse
import json
import os
import signal
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

calls = []
lock = threading.Lock()
settings = {}
served = [0]


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True
    offset = 0

    def log_message(self, *args):
        pass

    def send(self, status, body):
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        if self.path == "/healthz":
            return self.send(200, {"status": "ok"})
        if self.path == "/calls":
            with lock:
                return self.send(200, {"calls": list(calls)})
        self.send(404, {"error": self.path})

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers.get("content-length") or 0)) or b"{}")
        mode = self.headers.get("x-test", "")
        if mode == "slow":
            time.sleep(2)
        if mode == "garbage":
            self.wfile.write(b"THIS IS NOT HTTP\r\n\r\n")
            self.wfile.flush()
            self.close_connection = True
            return
        if mode == "die-before-headers":
            os.kill(os.getpid(), signal.SIGKILL)
        if self.path == "/v1/chat/completions":
            return self.chat(body)
        if settings.get("delay_ms"):
            time.sleep(settings["delay_ms"] / 1000)
        if settings.get("fail_every"):
            with lock:
                served[0] += 1
                failing = served[0] % settings["fail_every"] == 0
            if failing:
                return self.send(500, {"error": "failing on purpose"})
        instances = body.get("instances", [])
        with lock:
            calls.append(len(instances))
        if settings.get("hang"):
            time.sleep(3600)
        predictions = [sum(row) + self.offset if isinstance(row, list) else row for row in instances]
        if mode == "wrong-count" or [-1] in instances:
            predictions = predictions[:-1]
        if mode == "die-mid-body":
            self.send_response(200)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", "1000")
            self.end_headers()
            self.wfile.write(b'{"predictions": [')
            self.wfile.flush()
            time.sleep(0.2)
            os.kill(os.getpid(), signal.SIGKILL)
        self.send(200, {"predictions": predictions})

    def chat(self, body):
        if not body.get("stream"):
            return self.send(200, {"choices": [{"message": {"role": "assistant", "content": "hi"}}],
                                   "usage": {"prompt_tokens": 7, "completion_tokens": 3, "total_tokens": 10}})
        self.send_response(200)
        self.send_header("content-type", "text/event-stream")
        self.send_header("transfer-encoding", "chunked")
        self.end_headers()

        def event(payload):
            data = ("data: " + payload + "\n\n").encode()
            self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
            self.wfile.flush()

        for word in ["one", "two", "three"]:
            event(json.dumps({"t": time.time(), "choices": [{"delta": {"content": word}}]}))
            time.sleep(0.4)
        event(json.dumps({"choices": [], "usage": {"prompt_tokens": 5, "completion_tokens": 3, "total_tokens": 8}}))
        event("[DONE]")
        self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--model", required=True)
    args = parser.parse_args()
    with open(args.model) as f:
        settings.update(json.load(f))
    Handler.offset = settings["offset"]
    server = ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    server.daemon_threads = True
    server.serve_forever()


if __name__ == "__main__":
    main()
