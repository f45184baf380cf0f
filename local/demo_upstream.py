"""A slow demo REST API on loopback, shaped like dummy.restapiexample.com (the example
upstream of stages other than local).

`make run` starts it (upstream `demo` of the local stage), so a person sees a MISS
take ~300 ms and a HIT ~1 ms on /ui/cache.  The tests run the same server in a
thread and steer it: it counts requests per path and fails (HTTP 500) or hangs
on command.

    GET /api/v1/employees         {"status": "success", "data": [...24 employees]}
    GET /api/v1/employee/<id>     {"status": "success", "data": {...}}, or 404
    GET /api/v1/big               ~2 MB of incompressible JSON (over memcached's item limit)

    python -m local.demo_upstream --port 18080 --delay 0.3
"""
from __future__ import annotations

import argparse
import base64
import collections
import json
import os
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from chalicelib.settings import LOCAL_DEMO_UPSTREAM_PORT

FIRST = ["Tiger", "Garrett", "Ashton", "Cedric", "Airi", "Brielle", "Herrod", "Rhona",
         "Colleen", "Sonya", "Jena", "Quinn"]
LAST = ["Nixon", "Winters", "Cox", "Kelly", "Satou", "Williamson", "Chandler", "Davidson"]
EMPLOYEES = [{"id": i, "employee_name": f"{FIRST[i % len(FIRST)]} {LAST[i % len(LAST)]}",
              "employee_salary": 80000 + 7919 * i % 240000, "employee_age": 22 + 7 * i % 44,
              "profile_image": ""} for i in range(1, 25)]
BIG_BYTES = 2 * 1024 * 1024


class DemoUpstream:
    """The server and its controls: `delay`, `mode` (ok|fail|hang), request and
    connection counts."""

    def __init__(self, port: int = 0, delay: float = 0.3, host: str = "127.0.0.1"):
        self.delay = delay
        self.mode = "ok"
        self.calls: collections.Counter[str] = collections.Counter()
        self.connections = 0  # TCP connections accepted: a pooled client reuses one
        self._lock = threading.Lock()
        self._released = threading.Event()  # ends every hanging request
        self.server = ThreadingHTTPServer((host, port), self._handler_class())
        self.server.daemon_threads = True
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        return self.server.server_address[1]

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/api/v1"

    def total_calls(self) -> int:
        with self._lock:
            return sum(self.calls.values())

    def start(self) -> DemoUpstream:
        self._thread = threading.Thread(target=self.server.serve_forever, args=(0.05,),
                                        daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._released.set()
        self.server.shutdown()
        self.server.server_close()

    def answer(self, path: str) -> tuple[int, bytes]:
        """(status, JSON body) for one request, after the delay; counts it."""
        with self._lock:
            self.calls[path] += 1
        if self.mode == "hang":
            self._released.wait(60)
            return 503, b"{}"
        self._released.wait(self.delay)
        if self.mode == "fail":
            return 500, json.dumps({"status": "error", "message": "demo failure"}).encode()
        if path == "/api/v1/employees":
            return 200, self._json(EMPLOYEES, "Successfully! All records has been fetched.")
        if path == "/api/v1/big":
            blob = base64.b64encode(os.urandom(BIG_BYTES * 3 // 4)).decode()
            return 200, self._json(blob, "A big record.")
        prefix = "/api/v1/employee/"
        if path.startswith(prefix) and path[len(prefix):].isdigit():
            wanted = int(path[len(prefix):])
            for employee in EMPLOYEES:
                if employee["id"] == wanted:
                    return 200, self._json(employee, "Successfully! Record has been fetched.")
        return 404, json.dumps({"status": "error", "message": "Not found"}).encode()

    @staticmethod
    def _json(data, message: str) -> bytes:
        return json.dumps({"status": "success", "data": data, "message": message}).encode()

    def _handler_class(self):
        upstream = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive, as a real API
            disable_nagle_algorithm = True  # headers and body go out at once

            def setup(self):
                super().setup()
                with upstream._lock:
                    upstream.connections += 1

            def do_GET(self):  # noqa: N802 - http.server's name
                status, body = upstream.answer(self.path.split("?")[0])
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                except OSError:  # the client gave up (a timeout): nothing to answer
                    pass

            def log_message(self, *args):  # quiet: the stack's log is for the stack
                pass

        return Handler


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Slow demo REST API for the local stack")
    parser.add_argument("--port", type=int, default=int(
        os.environ.get("PULSE_DEMO_UPSTREAM_PORT", LOCAL_DEMO_UPSTREAM_PORT)))
    parser.add_argument("--delay", type=float, default=0.3, help="seconds per answer")
    args = parser.parse_args(argv)
    upstream = DemoUpstream(args.port, args.delay)
    print(f"demo upstream on {upstream.base_url} (delay {args.delay:g}s)", flush=True)
    try:
        upstream.server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        upstream.server.server_close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
