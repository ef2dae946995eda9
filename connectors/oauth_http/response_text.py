"""Reading an answer as text, for both requests: decoding, excerpts, kept headers, HTTP errors.

Everything that leaves here has been redacted with the exchange's secrets.
"""

from __future__ import annotations

import html
import re
from collections.abc import Sequence
from urllib.parse import urljoin, urlsplit, urlunsplit

from requests.structures import CaseInsensitiveDict

from connectors.oauth_http.body_masking import mask_body, mask_token_body
from connectors.oauth_http.redaction import MASK, redact_echoes, redact_headers, redact_url
from connectors.oauth_http.transport import RawResponse, Target

EXCERPT_LIMIT = 2_000
# The response headers an attempt record keeps: enough to explain, nothing that identifies.
KEPT_RESPONSE_HEADERS = ("Content-Type", "Location", "WWW-Authenticate")


def content_type(headers: CaseInsensitiveDict[str]) -> str:
    return headers.get("Content-Type", "").split(";", 1)[0].strip().lower()


def decode(body: bytes, headers: CaseInsensitiveDict[str]) -> str:
    match = re.search(r"charset=([\w.:-]+)", headers.get("Content-Type", ""), re.IGNORECASE)
    charset = match[1] if match else "utf-8"
    try:
        return body.decode(charset, errors="replace")
    except LookupError:
        return body.decode("utf-8", errors="replace")


def looks_like_html(text: str, media_type: str) -> bool:
    start = text.lstrip()[:100].lower()
    return media_type in ("text/html", "application/xhtml+xml") or start.startswith(
        ("<!doctype html", "<html")
    )


def html_title(text: str) -> str:
    match = re.search(r"<title[^>]*>(.*?)</title>", text[:65_536], re.IGNORECASE | re.DOTALL)
    if not match:
        return ""
    return " ".join(html.unescape(match[1]).split())[:120]


def html_page(text: str) -> str:
    """ "an HTML page", with its title when it has one."""
    title = html_title(text)
    return f"an HTML page titled {title!r}" if title else "an HTML page"


def short(text: str, limit: int = 300) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def size_text(size: int) -> str:
    if size % 1_048_576 == 0:
        return f"{size // 1_048_576} MiB"
    if size % 1024 == 0:
        return f"{size // 1024} KiB"
    return f"{size} bytes"


def excerpt(raw: RawResponse, secrets: Sequence[str], *, token_response: bool = False) -> str:
    """The start of the body, masked: default-deny for a successful token response
    (`token_response`), values under sensitive-looking keys for any other body."""
    # Redact before truncating, so a cut cannot leave a secret's prefix unmasked.
    text = decode(raw.body[: EXCERPT_LIMIT * 8], raw.headers)
    if token_response and 200 <= raw.status < 300:
        return mask_token_body(text, secrets=secrets)[:EXCERPT_LIMIT]
    return mask_body(text, secrets=secrets)[:EXCERPT_LIMIT]


def without_query(url: str) -> str:
    try:
        parts = urlsplit(url)
    except ValueError:
        return ""
    return urlunsplit((parts.scheme, parts.netloc.rpartition("@")[2], parts.path, "", ""))


def response_headers(raw: RawResponse, secrets: Sequence[str]) -> tuple[tuple[str, str], ...]:
    kept = []
    for name in KEPT_RESPONSE_HEADERS:
        value = raw.headers.get(name)
        if value is None:
            continue
        if name == "Location":
            # Shown whole, so the user can see where the server points; a query value that
            # looks secret (and any echo of our secrets) is masked, credentials in it dropped.
            value = location_redact(value)
        kept.append((name, redact_echoes(value, secrets=secrets)))
    return redact_headers(kept)


def location_host(raw: RawResponse, target: Target) -> str:
    location = raw.headers.get("Location", "")
    try:
        host = urlsplit(location).hostname if location else None
    except ValueError:
        host = None
    return host or (target.host if location else "")


# An authorization code (RFC 6749 §4.1.2) is a one-time credential whose name looks harmless.
_CODE_PARAM = re.compile(r"([?&#])(code)=([^&#]*)", re.IGNORECASE)


def location_redact(url: str) -> str:
    """A redirect target with user:password@ dropped and secret-looking query values masked."""
    return _CODE_PARAM.sub(lambda m: f"{m[1]}{m[2]}={MASK}", redact_url(url))


def location_url(raw: RawResponse, target: Target, secrets: Sequence[str]) -> str:
    """The redirect's target as an absolute URL, masked like the stored Location header."""
    location = raw.headers.get("Location", "").strip()
    if not location:
        return ""
    try:
        absolute = urljoin(target.url, location)
    except ValueError:
        return ""
    return redact_echoes(location_redact(absolute), secrets=secrets)


def redirect_message(raw: RawResponse, location: str, what: str) -> str:
    """ "The server answered HTTP 302 (a redirect to https://…)", for the token or API step."""
    where = f" to {location}" if location else ""
    return (
        f"{what} answered HTTP {raw.status} (a redirect{where}). Redirects are not followed "
        "because that would send the request, and any credentials in it, to the new address."
    )


def http_error_message(raw: RawResponse, text: str, secrets: Sequence[str]) -> str:
    status = f"HTTP {raw.status}" + (f" {raw.reason}" if raw.reason else "")
    if looks_like_html(text, content_type(raw.headers)):
        return f"The server answered {status} with {html_page(text)}."
    shown = short(mask_body(text, secrets=secrets), 200)
    return f"The server answered {status}" + (f": {shown}" if shown else " with no body.")


__all__ = [
    "EXCERPT_LIMIT",
    "content_type",
    "decode",
    "excerpt",
    "html_page",
    "html_title",
    "http_error_message",
    "location_host",
    "location_redact",
    "location_url",
    "redirect_message",
    "looks_like_html",
    "response_headers",
    "short",
    "size_text",
    "without_query",
]
