"""Copy-pasteable curl commands for each step of a test, with every secret as a shell variable.

One for a token attempt (`token_request_as_curl`), one for the API request made with the
credentials of any Auth Config (`api_request_as_curl`).
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Mapping, Sequence
from urllib.parse import quote_plus

from connectors.oauth_http.redaction import key_looks_sensitive, redact_url
from connectors.oauth_http.token_request import replace_header, token_request_parts
from connectors.oauth_http.types import DEFAULT_USER_AGENT, ApiRequest, Param, TokenRequest
from connectors.oauth_http.vocabulary import BASIC_METHODS, ClientAuthentication

Auth = ClientAuthentication

_BASIC_CLIENT_SNIPPET = (
    "import base64,os,urllib.parse as u;print(base64.b64encode((u.quote_plus(os.environ"
    '["CLIENT_ID"])+":"+u.quote_plus(os.environ["CLIENT_SECRET"])).encode()).decode())'
)
# Body fields the console fills from secret fields, and the variable each is read from.
_SECRET_FIELDS = {
    "password": "PASSWORD",
    "client_secret": "CLIENT_SECRET",
    "refresh_token": "REFRESH_TOKEN",
    "code": "CODE",
    "code_verifier": "CODE_VERIFIER",
    # A signed JWT (RFC 7523): the result step shows its header and claims; sign one with the
    # same key and claims (or copy it from a trusted place) into the variable.
    "assertion": "ASSERTION",
    "client_assertion": "CLIENT_ASSERTION",
}


def _shell_variable(key: str) -> str:
    return "PARAM_" + (re.sub(r"[^A-Z0-9]", "_", key.upper()) or "VALUE")


def _sensitive(params: tuple[Param, ...]) -> set[str]:
    return {p.key for p in params if p.sensitive or key_looks_sensitive(p.key)}


class _Command:
    """The options of the command, and the shell variables they read, in order of use."""

    def __init__(self, timeout: float, method: str = "-X POST") -> None:
        self.variables: list[str] = []
        self.preamble: list[str] = []
        self.options = ["curl --silent --show-error", f"--max-time {shlex.quote(f'{timeout:g}')}"]
        if method:
            self.options.append(method)

    def variable(self, name: str) -> str:
        if name not in self.variables:
            self.variables.append(name)
        return f'"${name}"'

    def text(self) -> str:
        lines = []
        if self.variables:
            lines.append(
                "# Set these shell variables first (for example: read -rs NAME): "
                + " ".join(self.variables)
            )
        lines += self.preamble
        lines.append(" \\\n  ".join(self.options))
        return "\n".join(lines)


def _add_headers(command: _Command, request: TokenRequest, label: str) -> None:
    headers, _ = token_request_parts(request, label)
    sensitive = {key.lower() for key in _sensitive(request.additional_headers)}
    configured_authorization = any(
        p.key.lower() == "authorization" for p in request.additional_headers
    )
    for name, value in headers:
        if name.lower() == "authorization" and label in BASIC_METHODS:
            if not configured_authorization:
                continue  # built below, without writing the credentials out
        if name.lower() in sensitive:
            variable = command.variable(_shell_variable(name))
            command.options.append(f"-H {shlex.quote(f'{name}: ')}{variable}")
        else:
            command.options.append(f"-H {shlex.quote(f'{name}: {value}')}")


def _add_basic(command: _Command, request: TokenRequest, label: str) -> None:
    if label == Auth.BASIC_CLIENT:
        secret = command.variable("CLIENT_SECRET")
        command.preamble.append(
            f"BASIC=$(CLIENT_ID={shlex.quote(request.client_id)} CLIENT_SECRET={secret} "
            f"python3 -c {shlex.quote(_BASIC_CLIENT_SNIPPET)})"
        )
        command.options.append('-H "Authorization: Basic $BASIC"')
    elif label == Auth.BASIC_CLIENT_UNENCODED:
        user = shlex.quote(request.client_id + ":")
        command.options.append(f"--user {user}{command.variable('CLIENT_SECRET')}")
    elif label == Auth.BASIC_USER:
        user = shlex.quote(request.username + ":")
        command.options.append(f"--user {user}{command.variable('PASSWORD')}")


def _add_body(command: _Command, request: TokenRequest, label: str) -> None:
    _, body = token_request_parts(request, label)
    sensitive = _sensitive(request.additional_request_data)
    custom_keys = {p.key for p in request.additional_request_data}
    for key, value in body:
        name = f"{quote_plus(key)}="
        if key in _SECRET_FIELDS and key not in custom_keys:
            variable = command.variable(_SECRET_FIELDS[key])
            command.options.append(f"--data-urlencode {shlex.quote(name)}{variable}")
        elif key in sensitive:
            variable = command.variable(_shell_variable(key))
            command.options.append(f"--data-urlencode {shlex.quote(name)}{variable}")
        else:
            command.options.append(f"--data-urlencode {shlex.quote(name + value)}")


def token_request_as_curl(request: TokenRequest, *, client_authentication: str) -> str:
    """A copy-pasteable curl command for one attempt, with secrets as shell variables.

    Secrets never appear: the command reads $CLIENT_SECRET, $PASSWORD, $REFRESH_TOKEN,
    $ASSERTION and $CLIENT_ASSERTION (signed JWTs, RFC 7523) and $PARAM_<KEY> (sensitive
    params) from the shell. For `basic_client`, curl's `-u` would skip the
    RFC 6749 §2.3.1 form-urlencoding of id and secret, so a preamble line computes the header
    value with python3 (`BASIC=$(...)`) and the command sends `Authorization: Basic $BASIC`.
    `basic_client_unencoded` and `basic_user` are plain RFC 7617 Basic, which `-u` produces.
    """
    label = client_authentication
    command = _Command(request.timeout)
    _add_headers(command, request, label)
    _add_basic(command, request, label)
    _add_body(command, request, label)
    if {"ASSERTION", "CLIENT_ASSERTION"} & set(command.variables):
        command.preamble.append(
            "# ASSERTION / CLIENT_ASSERTION: a JWT signed with the connector's private key, "
            "with the header and claims shown in this step (a fresh jti and exp each time)."
        )
    command.options.append(shlex.quote(redact_url(request.token_url.strip())))
    return command.text()


# --------------------------------------------------------------------------------------------
# The API request


def _with_variables(
    command: _Command, value: str, names: Mapping[str, str], *, prefix: str = ""
) -> str | None:
    """`prefix` + `value` as shell words, each known secret in it read from its variable.

    None when the value holds none of them (the caller then reads the whole value from one).
    """
    known = sorted((secret for secret in names if secret and secret in value), key=len)
    if not known:
        return None
    pattern = re.compile("|".join(re.escape(secret) for secret in reversed(known)))
    words, literal, position = [], prefix, 0
    for match in pattern.finditer(value):
        literal += value[position : match.start()]
        if literal:
            words.append(shlex.quote(literal))
        literal = ""
        words.append(command.variable(names[match[0]]))
        position = match.end()
    literal += value[position:]
    if literal:
        words.append(shlex.quote(literal))
    return "".join(words)


def _api_headers(request: ApiRequest) -> list[tuple[str, str]]:
    # The headers api_request_perform sends, but for Basic, which `--user` writes.
    headers: list[tuple[str, str]] = [
        ("User-Agent", request.user_agent or DEFAULT_USER_AGENT),
        ("Accept", "application/json, */*;q=0.8"),
    ]
    for param in request.headers:
        headers = replace_header(headers, param.key, param.value)
    return headers


def api_request_as_curl(
    request: ApiRequest,
    *,
    secret_names: Mapping[str, str] | None = None,
    notes: Sequence[str] = (),
) -> str:
    """A copy-pasteable curl command for the API request, with secrets as shell variables.

    `secret_names` maps each bare credential (an Api Key, a Bearer Token, an access token) to
    the variable it is read from: a header built from a pattern ("Bearer %s") keeps its fixed
    parts and reads only the credential from the shell. A sensitive header or parameter with no
    known credential in it is read whole from `$HEADER_<NAME>` / `$PARAM_<NAME>`. Basic
    credentials use curl's own `--user`, which builds exactly the header the test sent (RFC
    7617, UTF-8, not form-encoded); the password is `$PASSWORD`. `notes` are comment lines.
    """
    names = dict(secret_names or {})
    command = _Command(request.timeout, method="")
    sensitive_headers = {p.key.lower() for p in request.headers if p.sensitive}
    for name, value in _api_headers(request):
        if name.lower() in sensitive_headers or key_looks_sensitive(name):
            words = _with_variables(command, value, names, prefix=f"{name}: ")
            if words is None:
                variable = command.variable("HEADER_" + _shell_variable(name)[len("PARAM_") :])
                words = shlex.quote(f"{name}: ") + variable
            command.options.append(f"-H {words}")
        else:
            command.options.append(f"-H {shlex.quote(f'{name}: {value}')}")
    if request.basic_auth is not None:
        user, _password = request.basic_auth
        command.options.append(f"--user {shlex.quote(user + ':')}{command.variable('PASSWORD')}")
    if request.params:
        # --get appends each --data-urlencode to the URL's query, as the test did.
        command.options.append("--get")
        for param in request.params:
            field = f"{quote_plus(param.key)}="
            if param.sensitive or key_looks_sensitive(param.key):
                words = _with_variables(command, param.value, names, prefix=field)
                if words is None:
                    words = shlex.quote(field) + command.variable(_shell_variable(param.key))
                command.options.append(f"--data-urlencode {words}")
            else:
                command.options.append(
                    f"--data-urlencode {shlex.quote(f'{quote_plus(param.key)}={param.value}')}"
                )
    command.options.append(shlex.quote(redact_url(request.url.strip())))
    return "\n".join([*(f"# {note}" for note in notes), command.text()])


__all__ = ["api_request_as_curl", "token_request_as_curl"]
