"""A copy-pasteable curl command for one token attempt, with every secret as a shell variable."""

from __future__ import annotations

import re
import shlex
from urllib.parse import quote_plus

from connectors.oauth_http.redaction import key_looks_sensitive, redact_url
from connectors.oauth_http.token_request import token_request_parts
from connectors.oauth_http.types import Param, TokenRequest
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

    def __init__(self, request: TokenRequest) -> None:
        self.variables: list[str] = []
        self.preamble: list[str] = []
        self.options = [
            "curl --silent --show-error",
            f"--max-time {shlex.quote(f'{request.timeout:g}')}",
            "-X POST",
        ]

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
    command = _Command(request)
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


__all__ = ["token_request_as_curl"]
