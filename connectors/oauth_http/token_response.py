"""Reading a token endpoint's answer: OAuth errors, the token, its expiry and JWT claims.

`read_token_response` turns one raw answer into a `Reading`: the outcome, a factual message in
the server's terms, and the facts an explanation needs (keys found, the redirect's host, ...).
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import hashlib
import json
import math
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl

from connectors.oauth_http.redaction import redact_echoes, redact_url
from connectors.oauth_http.response_text import (
    content_type,
    decode,
    html_page,
    http_error_message,
    location_host,
    location_url,
    looks_like_html,
    redirect_message,
    short,
    size_text,
)
from connectors.oauth_http.transport import RawResponse, Target
from connectors.oauth_http.types import FieldLabels, TokenInfo, TokenRequest
from connectors.oauth_http.vocabulary import (
    OAUTH_ERROR_OUTCOMES,
    ExpiryFormat,
    Outcome,
    ResponseFormat,
)

FORM_CONTENT_TYPE = "application/x-www-form-urlencoded"


@dataclass(frozen=True, slots=True)
class Reading:
    outcome: Outcome
    message: str
    oauth_error: str = ""
    client_rejected: bool = False
    token: TokenInfo | None = None
    access_token: str = field(default="", repr=False)
    # The refresh token the server issued with it (RFC 6749 §5.1), e.g. a rotated one.
    refresh_token: str = field(default="", repr=False)
    keys_found: tuple[str, ...] = ()
    suggested_key: str = ""
    redirect_host: str = ""
    redirect_location: str = ""
    too_large: bool = False
    html_page: bool = False


# --------------------------------------------------------------------------------------------
# The document and the token in it


def _parse_document(text: str, media_type: str, response_type: str) -> dict[str, Any] | None:
    stripped = text.strip()
    if not stripped:
        return None
    if stripped.startswith("{"):
        # Servers send OAuth errors as JSON even when the success response is form-encoded.
        try:
            parsed = json.loads(stripped)
        except ValueError:
            parsed = None
        if isinstance(parsed, dict):
            return parsed
    if response_type == ResponseFormat.FORM or media_type == FORM_CONTENT_TYPE:
        try:
            pairs = parse_qsl(stripped, keep_blank_values=True, strict_parsing=True)
        except ValueError:
            return None
        return dict(pairs) if pairs else None
    return None


def _is_index(part: str) -> bool:
    """A list index in a dotted key: ASCII digits only ("³".isdigit() is true; int() refuses it)."""
    return part.isascii() and part.isdigit() and len(part) < 10


def _lookup(document: dict[str, Any], dotted_key: str) -> Any:
    """Follow a dotted path ("data.token"); a literal key containing dots wins."""
    if dotted_key in document:
        return document[dotted_key]
    current: Any = document
    for part in dotted_key.split("."):
        if isinstance(current, dict) and part in current:
            current = current[part]
        elif isinstance(current, list) and _is_index(part) and int(part) < len(current):
            current = current[int(part)]
        else:
            return None
    return current


def _token_paths(document: Any, prefix: str = "", depth: int = 0) -> list[str]:
    """Dotted paths to string values whose key mentions a token, to suggest a key."""
    if depth > 3 or not isinstance(document, dict):
        return []
    found = []
    for key, value in document.items():
        path = f"{prefix}{key}"
        if (
            isinstance(value, str)
            and value
            and "token" in str(key).lower()
            and "type" not in str(key).lower()
            and "refresh" not in str(key).lower()
        ):
            found.append(path)
        elif isinstance(value, dict):
            found += _token_paths(value, f"{path}.", depth + 1)
    return found


def _b64url_json(segment: str) -> dict[str, Any] | None:
    try:
        decoded = base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))
        value = json.loads(decoded)
    except (binascii.Error, ValueError):
        return None
    return value if isinstance(value, dict) else None


_JWT_CLAIMS_SHOWN = ("iss", "sub", "aud", "exp", "iat", "scope")


def _jwt_parts(token: str) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
    """Header and a few claims of a JWT, decoded without verification (display only)."""
    segments = token.split(".")
    if len(segments) != 3 or not all(re.fullmatch(r"[A-Za-z0-9_-]+", s) for s in segments[:2]):
        return None, None
    header, payload = _b64url_json(segments[0]), _b64url_json(segments[1])
    if header is None or payload is None:
        return None, None
    return header, {key: payload[key] for key in _JWT_CLAIMS_SHOWN if key in payload}


def _number(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return float(value) if math.isfinite(value) else None
    if isinstance(value, str):
        try:
            number = float(value.strip())
        except ValueError:
            return None
        return number if math.isfinite(number) else None
    return None


def _expiry(value: Any, expires_format: str, now: float) -> tuple[int | None, float | None]:
    """(expires_in seconds, expires_at epoch) from a configured expiry value."""
    if expires_format == ExpiryFormat.ISO8601:
        if not isinstance(value, str):
            return None, None
        try:
            moment = dt.datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
        except ValueError:
            return None, None
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=dt.UTC)
        expires_at = moment.timestamp()
        return round(expires_at - now), expires_at
    number = _number(value)
    if number is None:
        return None, None
    if expires_format == ExpiryFormat.EPOCH:
        # Some servers send milliseconds; no seconds timestamp is this large before year 5000.
        expires_at = number / 1000 if number > 1e11 else number
        return round(expires_at - now), expires_at
    return round(number), now + number


def _token_info(
    document: dict[str, Any],
    access_token: str,
    request: TokenRequest,
    now: float,
    labels: FieldLabels,
) -> tuple[TokenInfo, str]:
    """Facts about the token, and a note when the configured expiry could not be read."""
    note = ""
    raw_expiry = _lookup(document, request.expires_in_key) if request.expires_in_key else None
    expires_in, expires_at = (None, None)
    if raw_expiry not in (None, ""):
        expires_in, expires_at = _expiry(raw_expiry, request.expires_in_format, now)
        if expires_in is None:
            note = (
                f" The expiry at {labels.expires_in_key} {request.expires_in_key!r} could not be "
                f"read as {request.expires_in_format}."
            )
    jwt_header, jwt_claims = _jwt_parts(access_token)
    if expires_in is None and jwt_claims and _number(jwt_claims.get("exp")) is not None:
        expires_at = float(_number(jwt_claims["exp"]) or 0)
        expires_in = round(expires_at - now)
    scope = document.get("scope", "")
    if isinstance(scope, list):
        scope = " ".join(str(item) for item in scope)
    info = TokenInfo(
        token_type=str(document.get("token_type") or ""),
        expires_in=expires_in,
        expires_at=expires_at,
        scope=str(scope or ""),
        refresh_token_issued=bool(document.get("refresh_token")),
        token_hash=hashlib.sha256(access_token.encode()).hexdigest()[:12],
        jwt_header=jwt_header,
        jwt_claims=jwt_claims,
    )
    return info, note


def _describe_token(info: TokenInfo) -> str:
    facts = [info.token_type or "no token_type"]
    facts.append(f"expires in {info.expires_in} s" if info.expires_in is not None else "no expiry")
    if info.scope:
        facts.append(f"scope {info.scope!r}")
    if info.refresh_token_issued:
        facts.append("with a refresh token")
    return ", ".join(facts)


def _client_rejected(status: int, error: str, description: str) -> bool:
    if error == Outcome.INVALID_CLIENT:
        return True
    if status == 401 and not error:
        return True
    # Some servers answer a missing or unreadable Basic header this way.
    return error == Outcome.INVALID_REQUEST and bool(
        re.search(
            r"client.{0,30}(credential|auth|secret|id\b)|credential|authenticat",
            description,
            re.IGNORECASE,
        )
    )


# --------------------------------------------------------------------------------------------
# One answer, read


def _redirect(raw: RawResponse, target: Target, secrets: Sequence[str]) -> Reading:
    location = location_url(raw, target, secrets)
    return Reading(
        Outcome.REDIRECT_REFUSED,
        redirect_message(raw, location or location_host(raw, target), "The server"),
        redirect_host=location_host(raw, target),
        redirect_location=location,
    )


def _too_large(request: TokenRequest) -> Reading:
    return Reading(
        Outcome.INVALID_RESPONSE,
        f"The response is larger than {size_text(request.max_body_bytes)}; reading stopped "
        "there. A token response is a few kilobytes: this is not a token endpoint.",
        too_large=True,
    )


def _oauth_error(document: dict[str, Any] | None) -> str:
    if document is not None and isinstance(document.get("error"), str):
        return str(document["error"]).strip()
    return ""


# Where servers put the error text: RFC 6749's name first, then the names others use.
ERROR_TEXT_KEYS = ("error_description", "description", "message", "error_message", "detail")


def _error_text(document: dict[str, Any]) -> str:
    for key in ERROR_TEXT_KEYS:
        value = document.get(key)
        if isinstance(value, str) and value.strip():
            return value
    return ""


def _error_reading(
    raw: RawResponse, document: dict[str, Any], error: str, secrets: Sequence[str]
) -> Reading:
    """An OAuth error answer (RFC 6749 §5.2), by its own code when the console knows it."""
    description = redact_echoes(_error_text(document), secrets=secrets)
    uri = document.get("error_uri")
    detail = f": {short(description)}" if description else "."
    if uri:
        detail += f" (see {short(redact_url(str(uri)), 200)})"
    rejected = _client_rejected(raw.status, error, description)
    if error in OAUTH_ERROR_OUTCOMES:
        return Reading(
            Outcome(error),
            f"The server answered {short(error, 60)} (HTTP {raw.status}){detail}",
            oauth_error=error,
            client_rejected=rejected,
        )
    return Reading(
        Outcome.HTTP_ERROR,
        f"The server answered HTTP {raw.status} with error {short(error, 60)!r}{detail}",
        oauth_error=error,
        client_rejected=rejected,
    )


def _unreadable(raw: RawResponse, text: str, media_type: str, response_type: str) -> Reading:
    """A 2xx answer that is neither JSON nor form-encoded."""
    if looks_like_html(text, media_type):
        return Reading(
            Outcome.INVALID_RESPONSE,
            f"The server answered HTTP {raw.status} with {html_page(text)}, not a token response.",
            html_page=True,
        )
    what = "an empty body" if not text.strip() else f"a body that is not {response_type}"
    if response_type != ResponseFormat.FORM and text.strip():
        what = "a body that is neither JSON nor form-encoded"
    return Reading(
        Outcome.INVALID_RESPONSE,
        f"The server answered HTTP {raw.status} with {what} "
        f"(Content-Type {media_type or 'missing'}).",
    )


def _token_reading(document: dict[str, Any], request: TokenRequest, labels: FieldLabels) -> Reading:
    access_token = _lookup(document, request.access_token_key or "access_token")
    if not isinstance(access_token, str) or not access_token:
        keys = tuple(str(key) for key in document)
        listed = ", ".join(keys[:20]) or "none"
        paths = _token_paths(document)
        return Reading(
            Outcome.NO_TOKEN,
            f"The response has no access token at {labels.access_token_key} "
            f"{request.access_token_key!r}. Top-level keys found: {listed}.",
            keys_found=keys,
            suggested_key=paths[0] if paths else "",
        )
    info, note = _token_info(document, access_token, request, time.time(), labels)
    refresh_token = document.get("refresh_token")
    return Reading(
        Outcome.SUCCESS,
        f"The server issued an access token ({_describe_token(info)}).{note}",
        token=info,
        access_token=access_token,
        refresh_token=refresh_token if isinstance(refresh_token, str) else "",
    )


def read_token_response(
    raw: RawResponse,
    request: TokenRequest,
    target: Target,
    secrets: Sequence[str],
    labels: FieldLabels,
) -> Reading:
    """What one answer of the token endpoint says, in the console's outcomes."""
    if 300 <= raw.status < 400:
        return _redirect(raw, target, secrets)
    if raw.too_large:
        return _too_large(request)
    text = decode(raw.body, raw.headers)
    media_type = content_type(raw.headers)
    document = _parse_document(text, media_type, request.response_type)
    error = _oauth_error(document)
    if document is not None and error and (200 <= raw.status < 300 or raw.status in (400, 401)):
        return _error_reading(raw, document, error, secrets)
    if not 200 <= raw.status < 300:
        return Reading(
            Outcome.HTTP_ERROR,
            http_error_message(raw, text, secrets),
            client_rejected=_client_rejected(raw.status, "", ""),
            html_page=looks_like_html(text, media_type),
        )
    if document is None:
        return _unreadable(raw, text, media_type, request.response_type)
    return _token_reading(document, request, labels)


__all__ = ["FORM_CONTENT_TYPE", "Reading", "read_token_response"]
