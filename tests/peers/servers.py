"""Loopback test peers for the integration tests: a real OAuth2 server and a faulty one.

Both listen on 127.0.0.1 only, on a port chosen by the OS, and are started by the tests
themselves. Nothing here imports the Connector Console project or its settings.

DOT peer (django-oauth-toolkit 3.x as a real token server, in a SUBPROCESS)
---------------------------------------------------------------------------
::

    start_oauth_server(tmp_dir, *, fixtures: OAuthFixtures | None = None,
                       timeout: float = 30.0) -> OAuthPeer

Starts ``tests/peers/oauth_server/run.py`` with ``sys.executable -I`` (isolated: neither the
repo root nor ``PYTHONPATH`` is on its ``sys.path``; ``DJANGO_SETTINGS_MODULE`` is forced
to ``dot_peer.settings``), its SQLite file in a fresh directory under ``tmp_dir``. Returns
once the server accepts connections; raises ``RuntimeError`` (peer exited) or
``TimeoutError`` with the peer's stderr otherwise. The peer also exits by itself when the
test process dies (it watches its stdin).

``OAuthPeer`` (also a context manager; ``stop()`` is idempotent):

* ``base_url``  ``http://127.0.0.1:<port>``; ``port``
* ``token_url`` ``<base_url>/o/token/`` (DOT TokenView; RFC 6749 §2.3.1 Basic or body creds)
* ``authorize_url`` ``<base_url>/o/authorize/`` (DOT AuthorizationView: a login page at
  ``/accounts/login/``, then a consent page with Authorize / Cancel; PKCE required; each
  refresh rotates the refresh token and revokes the old one)
* ``me_url``    ``<base_url>/api/me``: Bearer token -> 200 ``{"username", "client_id",
  "scope"}`` (``username`` null for client-credentials tokens); otherwise 401
  ``{"error": "invalid_token"}`` + ``WWW-Authenticate: Bearer``.
* fixture credentials (plaintext, as clients must send them):
  ``username``, ``password`` (user ``alice``);
  ``client_id``, ``client_secret`` (confidential app, grant ``password``);
  ``cc_only_client_id``, ``cc_only_client_secret`` (grant ``client-credentials`` only ->
  ``unauthorized_client`` when used with the password grant);
  ``cc_client_id``, ``cc_client_secret`` (grant ``client-credentials``, for §4.4);
  ``authcode_client_id``, ``authcode_client_secret`` (confidential, ``authorization-code``)
  and ``authcode_public_client_id`` (public, no secret), both with the console's callback
  registered on 127.0.0.1 and localhost.
* ``scopes`` = ``("read", "write")``; anything else (e.g. ``admin``) -> ``invalid_scope``.
  Tokens live 3600 s; DOT returns ``expires_in`` as an integer and a refresh token for the
  password grant.
* ``stop()``, ``stderr_text()`` (the peer's log), ``data_dir``, ``process``.

Expected DOT answers: wrong client secret -> 401 ``invalid_client``; wrong user password
-> 400 ``invalid_grant``; cc-only app + password grant -> 400 ``unauthorized_client``;
``scope=admin`` -> 400 ``invalid_scope``. Client secrets and passwords use Django's
MD5 hasher in the peer, so a token request takes milliseconds, not ~1 s of PBKDF2.

Fault peer (in-process thread)
------------------------------
``FaultServer`` (re-exported from ``tests.peers.fault_server``; see that module for every
path): ``with FaultServer() as fault: fault.url("/timeout"); fault.requests`` ->
``list[RecordedRequest]`` (``method``, ``path``, ``headers``, ``body`` bytes, ``form``,
``basic_auth``, ``header(name)``); ``fault.client_id`` / ``fault.client_secret`` are the
credentials the auth-mode paths expect; ``fault.stop()``.

A session-scoped pytest fixture would look like::

    @pytest.fixture(scope="session")
    def oauth_peer(tmp_path_factory):
        with start_oauth_server(tmp_path_factory.mktemp("dot")) as peer:
            yield peer
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import IO, Any

from .fault_server import FAULT_PATHS, FaultServer, RecordedRequest

__all__ = [
    "FAULT_PATHS",
    "FaultServer",
    "OAuthFixtures",
    "OAuthPeer",
    "RecordedRequest",
    "start_oauth_server",
]

RUN_PY = Path(__file__).resolve().parent / "oauth_server" / "run.py"
_PORT_LINE = re.compile(r"^DOT_PEER_PORT=(\d+)\s*$", re.MULTILINE)


@dataclass(frozen=True)
class OAuthFixtures:
    """Credentials seeded into the DOT peer. Secrets exercise RFC 6749 §2.3.1 encoding:
    ``+`` (would decode to a space), ``/``, ``:`` (the Basic separator), ``%41`` (would
    decode to ``A``), non-ASCII ``é``."""

    username: str = "alice"
    password: str = "correct horse+/:%é"
    client_id: str = "console-client"
    client_secret: str = "s3cr+t/with:colon%41é"
    cc_only_client_id: str = "cc-only-client"
    cc_only_client_secret: str = "cc-only+/:%é"
    cc_client_id: str = "cc-client"
    cc_client_secret: str = "cc+sec/ret:%41é"
    # Authorization Code Grant (with PKCE): a confidential and a public client, both with the
    # console's callback registered on loopback (any port, RFC 8252 §7.3).
    authcode_client_id: str = "authcode-client"
    authcode_client_secret: str = "authcode+sec/ret:%41é"
    authcode_public_client_id: str = "authcode-public"
    redirect_uris: str = (
        "http://127.0.0.1/connectors/oauth2/callback/ http://localhost/connectors/oauth2/callback/"
    )

    def to_peer_json(self) -> dict[str, Any]:
        """The fixture document understood by ``oauth_server/run.py``."""
        return {
            "users": [{"username": self.username, "password": self.password}],
            "applications": [
                {
                    "name": "Connector Console (password grant)",
                    "client_id": self.client_id,
                    "client_secret": self.client_secret,
                    "client_type": "confidential",
                    "authorization_grant_type": "password",
                },
                {
                    "name": "Client-credentials only",
                    "client_id": self.cc_only_client_id,
                    "client_secret": self.cc_only_client_secret,
                    "client_type": "confidential",
                    "authorization_grant_type": "client-credentials",
                },
                {
                    "name": "Client credentials (RFC 6749 §4.4)",
                    "client_id": self.cc_client_id,
                    "client_secret": self.cc_client_secret,
                    "client_type": "confidential",
                    "authorization_grant_type": "client-credentials",
                },
                {
                    "name": "Connector Console (authorization code)",
                    "client_id": self.authcode_client_id,
                    "client_secret": self.authcode_client_secret,
                    "client_type": "confidential",
                    "authorization_grant_type": "authorization-code",
                    "redirect_uris": self.redirect_uris,
                },
                {
                    "name": "Connector Console (public, PKCE only)",
                    "client_id": self.authcode_public_client_id,
                    "client_secret": "",
                    "hash_client_secret": False,
                    "client_type": "public",
                    "authorization_grant_type": "authorization-code",
                    "redirect_uris": self.redirect_uris,
                },
            ],
        }


class OAuthPeer:
    """A running DOT peer subprocess; see the module docstring."""

    scopes: tuple[str, ...] = ("read", "write")

    def __init__(
        self,
        *,
        port: int,
        fixtures: OAuthFixtures,
        process: subprocess.Popen[bytes],
        data_dir: Path,
        stdout_file: IO[bytes],
        stderr_file: IO[bytes],
    ) -> None:
        self.port = port
        self.base_url = f"http://127.0.0.1:{port}"
        self.token_url = f"{self.base_url}/o/token/"
        self.authorize_url = f"{self.base_url}/o/authorize/"
        self.me_url = f"{self.base_url}/api/me"
        self.fixtures = fixtures
        self.username = fixtures.username
        self.password = fixtures.password
        self.client_id = fixtures.client_id
        self.client_secret = fixtures.client_secret
        self.cc_only_client_id = fixtures.cc_only_client_id
        self.cc_only_client_secret = fixtures.cc_only_client_secret
        self.cc_client_id = fixtures.cc_client_id
        self.cc_client_secret = fixtures.cc_client_secret
        self.authcode_client_id = fixtures.authcode_client_id
        self.authcode_client_secret = fixtures.authcode_client_secret
        self.authcode_public_client_id = fixtures.authcode_public_client_id
        self.process = process
        self.data_dir = data_dir
        self._stdout_file = stdout_file
        self._stderr_file = stderr_file

    def __repr__(self) -> str:
        return f"<OAuthPeer {self.base_url} pid={self.process.pid}>"

    def stderr_text(self) -> str:
        """Everything the peer wrote to stderr so far (request log, tracebacks)."""
        return _read_text(self.data_dir / "stderr.log")

    def stop(self, timeout: float = 5.0) -> None:
        _terminate(self.process, timeout)
        for handle in (self._stdout_file, self._stderr_file):
            handle.close()

    def __enter__(self) -> OAuthPeer:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def start_oauth_server(
    tmp_dir: str | os.PathLike[str],
    *,
    fixtures: OAuthFixtures | None = None,
    timeout: float = 30.0,
) -> OAuthPeer:
    """Start the DOT peer subprocess and wait until it serves; see the module docstring."""
    fixtures = fixtures or OAuthFixtures()
    Path(tmp_dir).mkdir(parents=True, exist_ok=True)
    data_dir = Path(tempfile.mkdtemp(prefix="dot_peer-", dir=tmp_dir))
    fixtures_path = data_dir / "fixtures.json"
    fixtures_path.write_text(json.dumps(fixtures.to_peer_json()), encoding="utf-8")

    env = {
        key: value
        for key, value in os.environ.items()
        if key not in {"DJANGO_SETTINGS_MODULE", "PYTHONPATH", "PYTHONSTARTUP"}
    }
    env["DOT_PEER_DIR"] = str(data_dir)
    stdout_path, stderr_path = data_dir / "stdout.log", data_dir / "stderr.log"
    stdout_file = stdout_path.open("wb")
    stderr_file = stderr_path.open("wb")
    process = subprocess.Popen(
        [
            sys.executable,
            "-I",
            str(RUN_PY),
            "--fixtures",
            str(fixtures_path),
            "--exit-on-stdin-eof",
        ],
        stdin=subprocess.PIPE,  # kept open; the peer exits when it is closed (see stop())
        stdout=stdout_file,
        stderr=stderr_file,
        cwd=data_dir,
        env=env,
    )

    deadline = time.monotonic() + timeout
    while True:
        match = _PORT_LINE.search(_read_text(stdout_path))
        if match:
            return OAuthPeer(
                port=int(match.group(1)),
                fixtures=fixtures,
                process=process,
                data_dir=data_dir,
                stdout_file=stdout_file,
                stderr_file=stderr_file,
            )
        returncode = process.poll()
        if returncode is not None or time.monotonic() > deadline:
            _terminate(process, 5.0)
            stdout_file.close()
            stderr_file.close()
            what = (
                f"exited with code {returncode}"
                if returncode is not None
                else f"did not report its port within {timeout:.0f} s"
            )
            message = (
                f"DOT peer ({RUN_PY}) {what}.\n"
                f"--- stderr ---\n{_read_text(stderr_path)}\n"
                f"--- stdout ---\n{_read_text(stdout_path)}"
            )
            raise RuntimeError(message) if returncode is not None else TimeoutError(message)
        time.sleep(0.02)


def _read_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8", errors="replace")
    except FileNotFoundError:
        return ""


def _terminate(process: subprocess.Popen[bytes], timeout: float) -> None:
    if process.stdin is not None and not process.stdin.closed:
        try:
            process.stdin.close()
        except OSError:
            pass
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=timeout)
