"""A token server that answers every POST after a delay, and counts requests in flight.

Run it in its own process (the benchmark and the worker tests do)::

    python -m tests.peers.slow_token_server --delay 0.1      # prints "PORT <n>" then serves

or in-process with `SlowTokenServer(delay=...)` as a context manager. Any path answers a valid
token. `GET /stats` answers {"requests", "in_flight", "max_in_flight"} per origin it serves;
`POST /fail...` answers 400 invalid_grant after the same delay; `GET /reset` zeroes the counts.
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class _Counter:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.requests = self.in_flight = self.max_in_flight = 0

    def enter(self) -> None:
        with self.lock:
            self.requests += 1
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)

    def leave(self) -> None:
        with self.lock:
            self.in_flight -= 1

    def stats(self) -> dict[str, int]:
        with self.lock:
            return {
                "requests": self.requests,
                "in_flight": self.in_flight,
                "max_in_flight": self.max_in_flight,
            }


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 1024
    delay: float
    counter: _Counter


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - quiet
        return

    def _send(self, status: int, document: dict[str, Any]) -> None:
        body = json.dumps(document).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        if self.path.startswith("/reset"):
            self.server.counter = _Counter()
        self._send(200, self.server.counter.stats())

    def do_POST(self) -> None:  # noqa: N802
        length = int(self.headers.get("Content-Length") or 0)
        self.rfile.read(length)
        counter = self.server.counter
        counter.enter()
        try:
            time.sleep(self.server.delay)
        finally:
            counter.leave()
        if self.path.startswith("/fail"):
            self._send(400, {"error": "invalid_grant", "error_description": "wrong password"})
        else:
            self._send(
                200, {"access_token": "slow-token", "token_type": "Bearer", "expires_in": 3600}
            )


class SlowTokenServer:
    """In-process variant: `with SlowTokenServer(delay=0.2) as server: server.url("/token")`."""

    def __init__(self, delay: float = 0.1) -> None:
        self.httpd = _Server(("127.0.0.1", 0), _Handler)
        self.httpd.delay = delay
        self.httpd.counter = _Counter()
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def url(self, path: str = "/token") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def stats(self) -> dict[str, int]:
        return self.httpd.counter.stats()

    def __enter__(self) -> SlowTokenServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--delay", type=float, default=0.1)
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args()
    httpd = _Server(("127.0.0.1", args.port), _Handler)
    httpd.delay = args.delay
    httpd.counter = _Counter()
    print(f"PORT {httpd.server_address[1]}", flush=True)
    try:
        httpd.serve_forever()
    except KeyboardInterrupt:
        pass
    sys.exit(0)


if __name__ == "__main__":
    main()
