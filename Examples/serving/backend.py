"""A stdlib-only model server for the quickstart's threshold model, behind `git ml serve`.

    python3 Examples/serving/backend.py --model model.json --port 9000

The gateway starts it with the verified copy of the registered artifact ({artifact}) and a port of its choosing
({port}), waits for GET /healthz to answer 200, then forwards requests to it unchanged:

    POST /v1/models/<name>:predict   KServe v1: {"instances": [[x], ...] or [{"x": ...}, ...]}
    POST /v2/models/<name>/infer     KServe v2: {"inputs": [{"name": "x", "shape": [n, 1], "datatype": "FP64", "data": [...]}]}
    POST /invocations                MLflow: {"dataframe_split": {"columns": ["x"], "data": [[...]]}}, or "instances"/"inputs"
"""
import argparse
import json
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def load(path):
    with open(path) as f:
        return float(json.load(f)["threshold"])


def feature(instance):
    if isinstance(instance, dict):
        return float(instance["x"])
    if isinstance(instance, list):
        return float(instance[0])
    return float(instance)


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, so the gateway reuses its connections
    disable_nagle_algorithm = True  # the head and the body are two writes: without this, 40 ms delayed-ACK stalls
    threshold = 0.5

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
            self.send(200, {"status": "ok"})
        else:
            self.send(404, {"error": "no route " + self.path})

    def do_POST(self):
        length = int(self.headers.get("content-length") or 0)
        try:
            body = json.loads(self.rfile.read(length) or b"{}")
            if self.path.endswith(":predict"):
                rows = body["instances"]
            elif self.path.endswith("/infer"):
                rows = body["inputs"][0]["data"]
            elif self.path == "/invocations":
                rows = body.get("dataframe_split", {}).get("data") or body.get("instances") or body.get("inputs")
            else:
                return self.send(404, {"error": "no route " + self.path})
            predictions = [int(feature(row) > self.threshold) for row in rows]
        except (KeyError, IndexError, TypeError, ValueError) as error:
            return self.send(400, {"error": "bad request: %r" % (error,)})
        if self.path.endswith("/infer"):
            self.send(200, {"model_name": self.path.split("/")[3], "outputs": [
                {"name": "y", "shape": [len(predictions)], "datatype": "INT64", "data": predictions}]})
        else:
            self.send(200, {"predictions": predictions})


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", required=True)
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    Handler.threshold = load(args.model)
    server = ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    server.daemon_threads = True
    server.serve_forever()


if __name__ == "__main__":
    main()
