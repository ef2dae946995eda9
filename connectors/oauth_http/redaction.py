"""Masking of secrets in headers, form fields, URLs, JSON and free text.

Everything the console shows or stores about an HTTP exchange passes through here first, and
the logging filter runs every log message through `redact_text`. No Django imports: the token
request module and the log filter use this without an app registry.
"""

from __future__ import annotations

import base64
import functools
import html
import json
import re
from collections.abc import Collection, Iterable
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, quote_plus, unquote_plus, urlsplit, urlunsplit

MASK = "********"

SENSITIVE_KEY_PATTERN = re.compile(
    r"secret|passw(?:or)?d|passphrase|pwd|token|key|authori[sz]ation|cookie|credential"
    r"|assertion|session|signature|private",
    re.IGNORECASE,
)

# Names that match the pattern but only ever carry harmless values; masking them would hide
# exactly what a user needs to read when debugging a token response.
HARMLESS_KEYS = frozenset(
    {"token_type", "token_url", "token_endpoint", "token_endpoint_auth_method", "key_id"}
)

_HEADERS_KEEPING_SCHEME = frozenset({"authorization", "proxy-authorization"})
_ALWAYS_MASKED_HEADERS = _HEADERS_KEEPING_SCHEME | {"cookie", "set-cookie"}

# Shorter strings would mask ordinary words and digits all over a message.
_MIN_SECRET_LENGTH = 4

_TEXT_SECRET_KEYS = r"access_token|refresh_token|id_token|client_secret|password"
_JSON_VALUE = re.compile(rf'("(?:{_TEXT_SECRET_KEYS})"\s*:\s*")((?:[^"\\]|\\.)*)(")', re.IGNORECASE)
# Python reprs (dict printed into a log line) use single quotes.
_REPR_VALUE = re.compile(rf"('(?:{_TEXT_SECRET_KEYS})'\s*:\s*')((?:[^'\\]|\\.)*)(')", re.IGNORECASE)
_FORM_VALUE = re.compile(
    rf"(?<![A-Za-z0-9_])((?:{_TEXT_SECRET_KEYS})=)([^&\s\"'<>]+)", re.IGNORECASE
)
# A query (or fragment) parameter inside free text, e.g. a URL quoted in an exception.
_QUERY_PARAM = re.compile(r"([?&#;])([A-Za-z0-9_.~\-\[\]%+]+)=([^&\s\"'<>#]*)")
# At least 8 token68 characters, so prose like "Bearer realm" or "Bearer error=" stays readable.
_BEARER_VALUE = re.compile(r"(\bBearer\s+)([A-Za-z0-9\-._~+/]{8,}=*)", re.IGNORECASE)


def key_looks_sensitive(key: str) -> bool:
    """True when a header, field or JSON key name suggests its value is a secret."""
    normalised = key.strip().lower()
    if normalised in HARMLESS_KEYS:
        return False
    return bool(SENSITIVE_KEY_PATTERN.search(normalised))


def _lowered(keys: Collection[str]) -> frozenset[str]:
    return frozenset(key.strip().lower() for key in keys)


def _mask_keeping_scheme(value: str) -> str:
    scheme, separator, credentials = value.strip().partition(" ")
    if separator and credentials.strip():
        return f"{scheme} {MASK}"
    return MASK


def redact_headers(
    headers: Iterable[tuple[str, str]], *, sensitive_keys: Collection[str] = ()
) -> tuple[tuple[str, str], ...]:
    """Mask credential-bearing headers; Authorization keeps its scheme (`Basic ********`)."""
    extra = _lowered(sensitive_keys)
    redacted: list[tuple[str, str]] = []
    for name, value in headers:
        lowered = name.strip().lower()
        if lowered in _HEADERS_KEEPING_SCHEME:
            redacted.append((name, _mask_keeping_scheme(value)))
        elif lowered in _ALWAYS_MASKED_HEADERS or lowered in extra or key_looks_sensitive(name):
            redacted.append((name, MASK))
        else:
            redacted.append((name, value))
    return tuple(redacted)


def redact_pairs(
    pairs: Iterable[tuple[str, str]], *, sensitive_keys: Collection[str] = ()
) -> tuple[tuple[str, str], ...]:
    """Mask the values of form fields whose key looks secret or is listed in `sensitive_keys`."""
    extra = _lowered(sensitive_keys)
    return tuple(
        (key, MASK if key.strip().lower() in extra or key_looks_sensitive(key) else value)
        for key, value in pairs
    )


def _redact_query(query: str) -> str:
    # Rebuilt by hand, not with urlencode, so untouched parameters keep their exact encoding.
    parts = []
    for part in query.split("&"):
        key, separator, _value = part.partition("=")
        if separator and key_looks_sensitive(unquote_plus(key)):
            parts.append(f"{key}={MASK}")
        else:
            parts.append(part)
    return "&".join(parts)


def redact_url(url: str) -> str:
    """Drop user:password@ and mask sensitive query (and fragment) parameter values."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return redact_text(url, secrets=())
    netloc = parts.netloc.rpartition("@")[2]
    return urlunsplit(
        (
            parts.scheme,
            netloc,
            parts.path,
            _redact_query(parts.query) if parts.query else "",
            # Implicit-flow style fragments carry access_token=...
            _redact_query(parts.fragment) if parts.fragment else "",
        )
    )


def _mojibake(secret: str) -> set[str]:
    """The secret's UTF-8 bytes read as Latin-1 or Windows-1252, as a careless server echoes it."""
    raw = secret.encode("utf-8")
    forms = {raw.decode("latin-1")}
    try:
        forms.add(raw.decode("cp1252"))
    except UnicodeDecodeError:
        pass  # a byte cp1252 leaves undefined; Latin-1 covers that form
    forms.discard(secret)
    return forms


def _textual_forms(variant: str) -> set[str]:
    """How one spelling of a secret appears inside URLs, JSON strings and HTML."""
    return {
        variant,
        quote_plus(variant),
        quote(variant, safe=""),
        quote(variant),
        json.dumps(variant)[1:-1],
        json.dumps(variant, ensure_ascii=False)[1:-1],
        html.escape(variant),
    }


def _encoded_forms(secret: str) -> set[str]:
    """Every form of a secret that redaction masks.

    Covered: the secret as is, upper- and lower-cased, its UTF-8 bytes read as Latin-1 or
    Windows-1252 (mojibake), each of those URL-encoded, JSON-escaped or HTML-escaped; its UTF-8
    bytes in base64 (standard and url-safe, with and without padding) and in hex (either case).
    `redact_echoes` adds mixed case and truncated prefixes for text a server sent.
    """
    raw = secret.encode("utf-8")
    standard = base64.b64encode(raw).decode("ascii")
    urlsafe = base64.urlsafe_b64encode(raw).decode("ascii")
    forms = {standard, standard.rstrip("="), urlsafe, urlsafe.rstrip("="), raw.hex()}
    forms.add(raw.hex().upper())
    for variant in {secret, secret.upper(), secret.lower(), *_mojibake(secret)}:
        forms |= _textual_forms(variant)
    return {form for form in forms if len(form) >= _MIN_SECRET_LENGTH}


def _secrets_key(secrets: Iterable[str]) -> tuple[str, ...]:
    return tuple(sorted({s for s in secrets if s and len(s) >= _MIN_SECRET_LENGTH}))


@functools.lru_cache(maxsize=1024)
def _forms_of(secret: str) -> frozenset[str]:
    return frozenset(_encoded_forms(secret))


@dataclass(frozen=True, slots=True)
class _Forms:
    """A secret set's encoded forms, and their lower case when every form is ASCII."""

    exact: tuple[str, ...]
    lowered: tuple[str, ...] | None


@functools.lru_cache(maxsize=256)
def _forms(secrets: tuple[str, ...]) -> _Forms:
    forms: set[str] = set()
    for secret in secrets:
        if secret and len(secret) >= _MIN_SECRET_LENGTH:
            forms |= _forms_of(secret)
    ascii_only = all(form.isascii() for form in forms)
    return _Forms(tuple(forms), tuple({f.lower() for f in forms}) if ascii_only else None)


def _may_match(text: str, secrets: tuple[str, ...], *, ignore_case: bool) -> bool:
    """False only when the secrets' pattern cannot match `text` (so it need not be compiled).

    Every test brings a set of secrets of its own (each connector's, and the token it got), so
    the cache of compiled patterns rarely hits, and compiling the alternation of a hundred forms
    cost more than the rest of the test. Most texts hold no secret: plain substring searches
    say so exactly. Case-insensitively that is exact only for ASCII forms in ASCII text (re's
    IGNORECASE equates some non-ASCII letters with ASCII ones, e.g. U+212A with "k"); anything
    else goes to the pattern as before.
    """
    forms = _forms(secrets)
    if not ignore_case:
        return any(form in text for form in forms.exact)
    if forms.lowered is None or not text.isascii():
        return True
    lowered = text.lower()
    return any(form in lowered for form in forms.lowered)


@functools.lru_cache(maxsize=256)
def _compiled_secrets_pattern(
    secrets: tuple[str, ...], ignore_case: bool
) -> re.Pattern[str] | None:
    # One test redacts a dozen texts with the same secrets; compiling once per set is the saving.
    forms = set(_forms(secrets).exact)
    if not forms:
        return None
    # Longest first, so a secret's encoded form is not half-replaced by a shorter form.
    ordered = sorted(forms, key=lambda form: (-len(form), form))
    flags = re.IGNORECASE if ignore_case else 0
    return re.compile("|".join(re.escape(form) for form in ordered), flags)


# A server that cuts an echoed secret still leaks most of it: any run of at least this many of
# its first characters is masked (with everything of the secret that follows the run).
PREFIX_ECHO_LENGTH = 8


@functools.lru_cache(maxsize=256)
def _prefix_pattern(secrets: tuple[str, ...]) -> tuple[re.Pattern[str], tuple[str, ...]] | None:
    longer = tuple(s for s in secrets if len(s) > PREFIX_ECHO_LENGTH)
    if not longer:
        return None
    prefixes = sorted({s[:PREFIX_ECHO_LENGTH] for s in longer})
    return re.compile("|".join(re.escape(p) for p in prefixes), re.IGNORECASE), longer


def _common_prefix(text: str, start: int, secret: str) -> int:
    length = 0
    for expected, found in zip(secret.lower(), text[start:].lower(), strict=False):
        if expected != found:
            break
        length += 1
    return length


def _no_prefix_in(text: str, key: tuple[str, ...]) -> bool:
    """True only when no secret's first 8 characters occur in `text`, in any case (exact for
    ASCII text and prefixes, as in _may_match; anything else goes to the pattern)."""
    prefixes = [s[:PREFIX_ECHO_LENGTH] for s in key if len(s) > PREFIX_ECHO_LENGTH]
    if not (text.isascii() and all(prefix.isascii() for prefix in prefixes)):
        return False
    lowered = text.lower()
    return not any(prefix.lower() in lowered for prefix in prefixes)


def _mask_prefixes(text: str, secrets: Iterable[str]) -> str:
    """Mask truncated echoes: each run of a secret's first 8+ characters, as far as it goes."""
    key = _secrets_key(secrets)
    if _no_prefix_in(text, key):
        return text
    compiled = _prefix_pattern(key)
    if compiled is None:
        return text
    pattern, longer = compiled
    parts: list[str] = []
    position = 0
    for match in pattern.finditer(text):
        if match.start() < position:
            continue  # inside a run masked already
        length = max(_common_prefix(text, match.start(), secret) for secret in longer)
        if length < PREFIX_ECHO_LENGTH:
            continue
        parts += [text[position : match.start()], MASK]
        position = match.start() + length
    return "".join(parts) + text[position:] if parts else text


def redact_echoes(text: str, *, secrets: Iterable[str]) -> str:
    """`redact_text` for text a remote server sent, which may echo a secret altered.

    Beyond `redact_text`'s forms it masks the secret in any mix of case and any run of its
    first 8 or more characters (a cut echo). Not for the console's own texts: a secret's first
    8 characters can be an ordinary word ("replaced-secret" would mask "replaced").
    """
    if not text:
        return text
    secret_list = tuple(secrets)
    key = _secrets_key(secret_list)
    if key:
        if _may_match(text, key, ignore_case=True):
            text = _compiled_pattern(key, ignore_case=True).sub(MASK, text)
        text = _mask_prefixes(text, secret_list)
    return redact_text(text, secrets=secret_list)


def _compiled_pattern(key: tuple[str, ...], *, ignore_case: bool) -> re.Pattern[str]:
    pattern = _compiled_secrets_pattern(key, ignore_case)
    assert pattern is not None  # a non-empty key has forms of at least the minimum length
    return pattern


def redact_text(text: str, *, secrets: Iterable[str]) -> str:
    """Mask known secrets (and their encoded forms) plus token-like values in free text."""
    if not text:
        return text
    key = _secrets_key(secrets)
    if key and _may_match(text, key, ignore_case=False):
        text = _compiled_pattern(key, ignore_case=False).sub(MASK, text)
    text = _JSON_VALUE.sub(lambda match: f"{match[1]}{MASK}{match[3]}", text)
    text = _REPR_VALUE.sub(lambda match: f"{match[1]}{MASK}{match[3]}", text)
    text = _FORM_VALUE.sub(lambda match: f"{match[1]}{MASK}", text)
    text = _QUERY_PARAM.sub(_masked_query_param, text)
    text = _BEARER_VALUE.sub(lambda match: f"{match[1]}{MASK}", text)
    return text


def _masked_query_param(match: re.Match[str]) -> str:
    if match[3] and key_looks_sensitive(unquote_plus(match[2])):
        return f"{match[1]}{match[2]}={MASK}"
    return match[0]


def redact_json(
    obj: Any,
    *,
    secrets: Iterable[str] = (),
    sensitive_keys: Collection[str] = (),
    harmless_keys: Collection[str] = (),
) -> Any:
    """A deep copy with sensitive keys' values and every secret occurrence masked.

    `harmless_keys` are names the caller knows to carry no secret although they look like one
    (our own "oauth2_header_auth_key", a row's "key"); their values are still searched for
    known secrets.
    """
    extra = _lowered(sensitive_keys)
    harmless = _lowered(harmless_keys)
    secret_list = tuple(secrets)

    def masked(key: Any, value: Any) -> bool:
        # Empty values stay visible: "not set" is useful and reveals nothing.
        if not isinstance(key, str) or value in (None, ""):
            return False
        name = key.strip().lower()
        return name in extra or (name not in harmless and key_looks_sensitive(key))

    def walk(value: Any) -> Any:
        if isinstance(value, dict):
            return {key: MASK if masked(key, item) else walk(item) for key, item in value.items()}
        if isinstance(value, (list, tuple)):
            return [walk(item) for item in value]
        if isinstance(value, str):
            return redact_text(value, secrets=secret_list)
        return value

    return walk(obj)
