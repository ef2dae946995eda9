"""Masking of response bodies by key: default-deny for token responses, key-based for the rest.

A token endpoint's successful answer is made of credentials: besides the access token there
are refresh, ID and session tokens under names no list can foresee (Cognito's
`AuthenticationResult.IdToken`, Firebase's `refreshToken`, `data.token`, `apiKey`,
`session_key`). So every string value in it is masked unless its key is known to be harmless
(`HARMLESS_TOKEN_KEYS`). Every other body (an API's answer, an OAuth error) gets the masking
headers get: a value is masked when its key, or the key of an object or list around it, looks
sensitive.

The JSON is read as a stream of tokens rather than parsed, so the original formatting stays and
a body cut at the excerpt limit (or too deep for a parser) is masked all the same.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Sequence
from urllib.parse import parse_qsl

from connectors.oauth_http.redaction import MASK, key_looks_sensitive, redact_echoes

# Keys of a token response whose values say nothing secret; compared without case, "_", "-"
# or ".", so `expires_in`, `ExpiresIn` and `expires-in` are one entry.
HARMLESS_TOKEN_KEYS = frozenset(
    {
        # RFC 6749 §5.1 and §5.2, RFC 8693
        "token_type",
        "expires_in",
        "scope",
        "error",
        "error_description",
        "error_uri",
        "issued_token_type",
        # common extensions: expiry in other units and names, Keycloak, Azure AD, Firebase
        "expires",
        "expires_at",
        "expires_on",
        "expiry",
        "expiration",
        "ext_expires_in",
        "refresh_expires_in",
        "refresh_token_expires_in",
        "not_before",
        "not_before_policy",
        "scopes",
        "kind",
        "registered",
        # error details as servers name them (`description`, `message`) and request ids
        "error_code",
        "error_codes",
        "description",
        "message",
        "status",
        "timestamp",
        "trace_id",
        "correlation_id",
        "request_id",
        "challenge_name",
    }
)


def _normalised(key: str) -> str:
    return re.sub(r"[\s_.\-]", "", key).lower()


_HARMLESS_NORMALISED = frozenset(_normalised(key) for key in HARMLESS_TOKEN_KEYS)


def harmless_token_key(key: str) -> bool:
    """True when a token response's key is known to carry nothing secret."""
    return _normalised(key) in _HARMLESS_NORMALISED


# A JSON string (possibly cut off at the end of the text), or one structural character.
_JSON_TOKEN = re.compile(r'"(?:[^"\\]|\\.)*(?:"|\\?\Z)|[{}\[\]:,]')

# Shorter masked values ("yes", an e-mail's user) would mask ordinary words elsewhere.
_MIN_ECHOED_VALUE = 8

# Decides, from the keys leading to a string value (outermost first), whether to mask it.
MaskRule = Callable[[Sequence[str]], bool]


def _json_string(literal: str) -> str:
    try:
        value = json.loads(literal)
    except ValueError:
        return literal[1:-1] if literal.endswith('"') else literal[1:]
    return value if isinstance(value, str) else literal


class _Walker:
    """Follows the nesting of a JSON text: which keys lead to each string value."""

    def __init__(self) -> None:
        # One entry per open object or list, with the key it sits under ("" at the top); a
        # list's items sit under the list's key.
        self.stack: list[tuple[str, str]] = []
        self.key = ""  # the innermost object's latest key
        self.expect_key = False

    def _enclosing_key(self) -> str:
        if not self.stack:
            return ""
        kind, key = self.stack[-1]
        return self.key if kind == "{" else key

    def path(self) -> list[str]:
        keys = [key for _, key in self.stack]
        if self.stack and self.stack[-1][0] == "{":
            keys.append(self.key)
        return [key for key in keys if key]

    def structural(self, char: str) -> None:
        if char in "{[":
            self.stack.append((char, self._enclosing_key()))
            self.key = ""
            self.expect_key = char == "{"
        elif char in "}]":
            if self.stack:
                self.stack.pop()
            self.expect_key = False
        elif char == ",":
            self.expect_key = bool(self.stack) and self.stack[-1][0] == "{"
        # ":" ends a key; the next string is its value.


def mask_json_text(text: str, *, secrets: Sequence[str], masked: MaskRule) -> str:
    """Mask each string value `masked` picks; search the whole text for known secrets."""
    walker = _Walker()
    parts: list[str] = []
    hidden: list[str] = []
    position = 0
    for match in _JSON_TOKEN.finditer(text):
        token = match[0]
        if token[0] != '"':
            walker.structural(token)
        elif walker.expect_key:
            walker.key = _json_string(token)
            walker.expect_key = False
        elif masked(walker.path()):
            parts += [text[position : match.start()], f'"{MASK}"']
            position = match.end()
            hidden.append(_json_string(token))
    # A masked value quoted again under a harmless key ("message") is masked there too.
    found = (value for value in hidden if len(value) >= _MIN_ECHOED_VALUE)
    return redact_echoes("".join(parts) + text[position:], secrets=(*secrets, *found))


def _token_rule(path: Sequence[str]) -> bool:
    return not path or not harmless_token_key(path[-1])


def _sensitive_rule(path: Sequence[str]) -> bool:
    return any(key and key_looks_sensitive(key) for key in path)


def _looks_like_json(text: str) -> bool:
    return text.lstrip()[:1] in ("{", "[")


def _mask_form(text: str, secrets: Sequence[str], masked: MaskRule) -> str | None:
    """A form-encoded body with masked values, or None when it is not one."""
    stripped = text.strip()
    if not stripped or any(char.isspace() for char in stripped):
        return None
    try:
        parse_qsl(stripped, keep_blank_values=True, strict_parsing=True)
    except ValueError:
        return None
    pairs = []
    for part in stripped.split("&"):
        key, _, value = part.partition("=")
        name = parse_qsl(f"{key}=", keep_blank_values=True)[0][0] if key else ""
        pairs.append(f"{key}={MASK}" if value and masked([name]) else part)
    return redact_echoes("&".join(pairs), secrets=secrets)


# A body that is one long word: most likely a bare token sent as text/plain.
_BARE_TOKEN = re.compile(r"\s*[A-Za-z0-9\-._~+/]{16,}=*\s*")


def mask_token_body(text: str, *, secrets: Sequence[str]) -> str:
    """A successful token response, default-deny: only harmless keys' values stay readable."""
    if _looks_like_json(text):
        return mask_json_text(text, secrets=secrets, masked=_token_rule)
    form = _mask_form(text, secrets, _token_rule)
    if form is not None:
        return form
    if _BARE_TOKEN.fullmatch(text):
        return MASK
    return redact_echoes(text, secrets=secrets)


def mask_body(text: str, *, secrets: Sequence[str]) -> str:
    """Any other body: values under sensitive-looking keys at any depth, and known secrets."""
    if _looks_like_json(text):
        return mask_json_text(text, secrets=secrets, masked=_sensitive_rule)
    return redact_echoes(text, secrets=secrets)


__all__ = [
    "HARMLESS_TOKEN_KEYS",
    "harmless_token_key",
    "mask_body",
    "mask_json_text",
    "mask_token_body",
]
