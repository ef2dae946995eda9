"""Entry point of the django-oauth-toolkit (DOT) test peer.

Usage (normally via ``tests.peers.servers.start_oauth_server``)::

    DOT_PEER_DIR=/tmp/x python -I run.py --fixtures fixtures.json [--exit-on-stdin-eof]

* ``DOT_PEER_DIR`` (env, or ``--data-dir``): writable directory for the SQLite file.
* ``--fixtures``: path to a JSON file, or inline JSON, or env ``DOT_PEER_FIXTURES`` (inline
  JSON)::

      {"users": [{"username": "alice", "password": "..."}],
       "applications": [{"name": "...", "client_id": "...", "client_secret": "...",
                         "client_type": "confidential",
                         "authorization_grant_type": "password"}]}

  Client secrets are given in plaintext and hashed by DOT on save (``hash_client_secret``
  defaults to True), so the plaintext secret is what clients must send.

Migrates (auth, contenttypes, oauth2_provider only), loads the fixtures, binds a threaded
WSGI server on 127.0.0.1 port 0 and prints ``DOT_PEER_PORT=<port>`` on stdout once it
accepts connections. With ``--exit-on-stdin-eof`` it exits when its stdin is closed, so the
peer dies with the test process that started it even if that process is killed.

Routes: ``POST /o/token/`` (DOT TokenView), ``GET /api/me`` (Bearer-protected, 401 otherwise).
"""

from __future__ import annotations

import argparse
import json
import os
import socketserver
import sys
import threading
import warnings
from pathlib import Path
from socketserver import ThreadingMixIn
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer

HERE = Path(__file__).resolve().parent
PORT_LINE_PREFIX = "DOT_PEER_PORT="


class ThreadingWSGIServer(ThreadingMixIn, WSGIServer):
    daemon_threads = True
    request_queue_size = 64

    def server_bind(self) -> None:
        # Skip HTTPServer.server_bind's socket.getfqdn() (a reverse DNS lookup).
        socketserver.TCPServer.server_bind(self)
        host, port = self.server_address[:2]
        self.server_name = str(host)
        self.server_port = int(port)
        self.setup_environ()


class StderrRequestHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        sys.stderr.write("dot-peer: " + (format % args) + "\n")


def _load_fixture_data(value: str | None) -> dict[str, Any]:
    if value is None:
        value = os.environ.get("DOT_PEER_FIXTURES")
    if not value:
        return {}
    if value.lstrip().startswith("{"):
        return json.loads(value)
    return json.loads(Path(value).read_text(encoding="utf-8"))


def _create_fixtures(data: dict[str, Any]) -> None:
    from django.contrib.auth import get_user_model
    from django.contrib.auth.hashers import check_password, identify_hasher
    from oauth2_provider.models import get_application_model

    user_model = get_user_model()
    application_model = get_application_model()
    users = {}
    for spec in data.get("users", []):
        user = user_model(username=spec["username"])
        user.set_password(spec["password"])
        user.save()
        users[user.get_username()] = user

    for spec in data.get("applications", []):
        plaintext = spec["client_secret"]
        app = application_model(
            name=spec.get("name", spec["client_id"]),
            client_id=spec["client_id"],
            client_secret=plaintext,
            hash_client_secret=spec.get("hash_client_secret", True),
            client_type=spec.get("client_type", "confidential"),
            authorization_grant_type=spec["authorization_grant_type"],
            redirect_uris=spec.get("redirect_uris", ""),
            user=users.get(spec["owner"]) if spec.get("owner") else None,
        )
        app.full_clean()
        app.save()
        app.refresh_from_db()
        # Fail fast if DOT stored the secret in a way the plaintext would not match.
        if app.hash_client_secret:
            identify_hasher(app.client_secret)
            if not check_password(plaintext, app.client_secret):
                raise RuntimeError(f"stored secret of {app.client_id!r} does not verify")


def _exit_on_stdin_eof() -> None:
    # os.read on the raw fd: a daemon thread blocked inside sys.stdin's buffered reader
    # would abort the interpreter at shutdown ("could not acquire lock ... <stdin>").
    try:
        while os.read(0, 4096):
            pass
    except OSError:
        pass
    os._exit(0)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument(
        "--fixtures", help="JSON file path or inline JSON (else $DOT_PEER_FIXTURES)"
    )
    parser.add_argument("--data-dir", help="directory for the SQLite file (else $DOT_PEER_DIR)")
    parser.add_argument("--exit-on-stdin-eof", action="store_true")
    args = parser.parse_args(argv)

    data_dir = args.data_dir or os.environ.get("DOT_PEER_DIR")
    if not data_dir:
        parser.error("set DOT_PEER_DIR or pass --data-dir")
    Path(data_dir).mkdir(parents=True, exist_ok=True)
    os.environ["DOT_PEER_DIR"] = str(Path(data_dir).resolve())
    os.environ["DJANGO_SETTINGS_MODULE"] = "dot_peer.settings"  # never the project's settings
    if str(HERE) not in sys.path:
        sys.path.insert(0, str(HERE))

    # DOT 3.4 nags (DeprecationWarning) on every password-grant request: RFC 9700 §2.4.
    warnings.filterwarnings("ignore", message=r".*RFC 9700.*")

    if args.exit_on_stdin_eof:
        threading.Thread(target=_exit_on_stdin_eof, name="stdin-watchdog", daemon=True).start()

    import django

    django.setup()

    import dot_peer

    if Path(dot_peer.__file__).resolve().parent != HERE / "dot_peer":
        raise RuntimeError(f"imported the wrong dot_peer package: {dot_peer.__file__}")

    from django.core.management import call_command
    from django.core.wsgi import get_wsgi_application

    call_command("migrate", verbosity=0, interactive=False)
    _create_fixtures(_load_fixture_data(args.fixtures))

    httpd = ThreadingWSGIServer(("127.0.0.1", 0), StderrRequestHandler)
    httpd.set_app(get_wsgi_application())
    print(f"{PORT_LINE_PREFIX}{httpd.server_port}", flush=True)
    try:
        httpd.serve_forever(poll_interval=0.2)
    except KeyboardInterrupt:
        pass
    finally:
        httpd.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
