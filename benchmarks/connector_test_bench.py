"""connector_test against bare requests.post: the overhead of checking, explaining and recording.

    .venv/bin/python benchmarks/connector_test_bench.py            # SQLite in a temp folder
    .venv/bin/python benchmarks/connector_test_bench.py --runs 500

Both sides post the same password-grant token request to the same fast token server on
127.0.0.1 (a threaded http.server in this process). The connector_test side also resolves and
checks the address, runs the deadline watchdog, parses and explains the answer, and writes the
run, its attempt and the audit record. Target: median ratio 1.25 or less.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _setup import django_on_fresh_database  # noqa: E402

TOKEN_BODY = json.dumps(
    {"access_token": "bench-token", "token_type": "Bearer", "expires_in": 3600}
).encode()


class TokenHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_POST(self) -> None:  # noqa: N802 - http.server's naming
        self.rfile.read(int(self.headers.get("Content-Length", "0")))
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(TOKEN_BODY)))
        self.end_headers()
        self.wfile.write(TOKEN_BODY)

    def log_message(self, *args: object) -> None:
        pass


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=200)
    args = parser.parse_args()
    url = django_on_fresh_database("connector-test")
    import requests
    from django.conf import settings

    from connectors.connection_test import connector_test
    from connectors.models import Connector

    settings.CONNECTORS_OUTBOUND_ALLOW_LOOPBACK = True
    server = ThreadingHTTPServer(("127.0.0.1", 0), TokenHandler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    token_url = f"http://127.0.0.1:{server.server_address[1]}/token"
    connector = Connector.objects.create(
        name="bench",
        auth_config="oauth2",
        oauth2_grant_type="password",
        oauth2_client_id="bench-client",
        oauth2_client_secret="bench+secret/:%",
        oauth2_username="bench.user",
        oauth2_password="bench-password",
        oauth2_token_url=token_url,
        oauth2_client_authentication="request_body",
    )
    body = {
        "grant_type": "password",
        "username": "bench.user",
        "password": "bench-password",
        "client_id": "bench-client",
        "client_secret": "bench+secret/:%",
    }
    headers = {"Accept": "application/json"}

    def bare() -> None:
        response = requests.post(
            token_url, data=body, headers=headers, timeout=10, allow_redirects=False
        )
        assert response.json()["access_token"] == "bench-token"

    def ours() -> None:
        assert connector_test(connector=connector).run.ok

    from connectors import oauth_http
    from connectors.connection_test import outbound_policy, token_request_for

    described = token_request_for(connector)

    def transport() -> None:
        # The HTTP part alone (policy, pinning, deadline, parsing, redaction), not recorded.
        assert oauth_http.token_request_perform(described, policy=outbound_policy()).ok

    series = (("bare", bare), ("ours", ours), ("transport", transport))
    for _, warm in series:
        for _ in range(10):
            warm()
    timings: dict[str, list[float]] = {name: [] for name, _ in series}
    # Interleaved, so drift on the machine affects every side alike.
    for _ in range(args.runs):
        for name, call in series:
            started = time.perf_counter()
            call()
            timings[name].append((time.perf_counter() - started) * 1000)
    server.shutdown()
    bare_median = statistics.median(timings["bare"])
    ours_median = statistics.median(timings["ours"])
    transport_median = statistics.median(timings["transport"])
    print(f"database: {url.split('@')[-1]}; {args.runs} runs each")
    print(f"bare requests.post median:            {bare_median:.2f} ms")
    print(f"connector_test median:                {ours_median:.2f} ms")
    print(f"  of which the HTTP part (perform):   {transport_median:.2f} ms")
    print(f"  and recording run + audit record:   {ours_median - transport_median:.2f} ms")
    print(f"ratio connector_test / bare: {ours_median / bare_median:.2f} (target <= 1.25)")
    print(f"ratio HTTP part / bare:      {transport_median / bare_median:.2f}")


if __name__ == "__main__":
    main()
