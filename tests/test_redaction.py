"""Masking of secrets in headers, form fields, URLs, free text and JSON."""

from __future__ import annotations

import base64
import json
from urllib.parse import quote, quote_plus

import pytest

from connectors.oauth_http.redaction import (
    MASK,
    SENSITIVE_KEY_PATTERN,
    key_looks_sensitive,
    redact_headers,
    redact_json,
    redact_pairs,
    redact_text,
    redact_url,
)

SECRET = "s3cr+t/pa ss:é"


def test_mask_is_fixed() -> None:
    assert MASK == "********"


@pytest.mark.parametrize(
    "key",
    [
        "client_secret",
        "password",
        "Passwd",
        "refresh_token",
        "X-Api-Key",
        "apikey",
        "Authorization",
        "Cookie",
        "aws_credentials",
        "client_assertion",
        "SESSION_ID",
        "id_token",
    ],
)
def test_sensitive_keys(key: str) -> None:
    assert key_looks_sensitive(key)
    assert SENSITIVE_KEY_PATTERN.search(key)


@pytest.mark.parametrize(
    "key", ["grant_type", "username", "scope", "client_id", "audience", "token_type", "X-Tenant"]
)
def test_harmless_keys(key: str) -> None:
    assert not key_looks_sensitive(key)


def test_redact_headers_keeps_scheme_and_masks_sensitive() -> None:
    headers = [
        ("Authorization", "Basic dXNlcjpwYXNz"),
        ("proxy-authorization", "Bearer abc.def.ghi"),
        ("Authorization", "rawtokenwithoutscheme"),
        ("Cookie", "sid=1"),
        ("Set-Cookie", "sid=2; HttpOnly"),
        ("X-Api-Key", "k-1"),
        ("X-Tenant", "acme"),
        ("X-Custom", "custom-secret"),
        ("Accept", "application/json"),
    ]
    assert redact_headers(headers, sensitive_keys=["x-CUSTOM"]) == (
        ("Authorization", f"Basic {MASK}"),
        ("proxy-authorization", f"Bearer {MASK}"),
        ("Authorization", MASK),
        ("Cookie", MASK),
        ("Set-Cookie", MASK),
        ("X-Api-Key", MASK),
        ("X-Tenant", "acme"),
        ("X-Custom", MASK),
        ("Accept", "application/json"),
    )


def test_redact_pairs_masks_secret_fields_in_order() -> None:
    pairs = [
        ("grant_type", "password"),
        ("username", "alice"),
        ("password", "pw"),
        ("client_id", "cid"),
        ("client_secret", "cs"),
        ("refresh_token", "rt"),
        ("client_assertion", "jwt"),
        ("resource", "r"),
        ("pin", "1234"),
    ]
    assert redact_pairs(pairs, sensitive_keys=("PIN",)) == (
        ("grant_type", "password"),
        ("username", "alice"),
        ("password", MASK),
        ("client_id", "cid"),
        ("client_secret", MASK),
        ("refresh_token", MASK),
        ("client_assertion", MASK),
        ("resource", "r"),
        ("pin", MASK),
    )


def test_redact_url() -> None:
    assert (
        redact_url("https://user:pw@api.example.com:8443/p/a?x=1&api_key=abc%20d&Token=t#frag")
        == f"https://api.example.com:8443/p/a?x=1&api_key={MASK}&Token={MASK}#frag"
    )
    assert redact_url("https://example.com/cb#access_token=abc&state=1") == (
        f"https://example.com/cb#access_token={MASK}&state=1"
    )
    assert redact_url("https://example.com/plain?q=a%2Fb") == "https://example.com/plain?q=a%2Fb"


@pytest.mark.parametrize(
    "form",
    [
        SECRET,
        quote_plus(SECRET),
        quote(SECRET, safe=""),
        base64.b64encode(SECRET.encode()).decode(),
        base64.urlsafe_b64encode(SECRET.encode()).decode().rstrip("="),
        json.dumps(SECRET)[1:-1],
    ],
    ids=["raw", "form", "percent", "base64", "base64url", "json-escaped"],
)
def test_redact_text_masks_every_encoding_of_a_secret(form: str) -> None:
    text = f"server said: credentials {form} are wrong"
    redacted = redact_text(text, secrets=[SECRET])
    assert form not in redacted
    assert redacted == f"server said: credentials {MASK} are wrong"


def test_redact_text_ignores_short_and_empty_secrets() -> None:
    assert redact_text("abc and the", secrets=["abc", "", "the"]) == "abc and the"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('{"access_token": "eyJhbGc.x.y", "x": 1}', f'{{"access_token": "{MASK}", "x": 1}}'),
        ('{"refresh_token":"r\\"t"}', f'{{"refresh_token":"{MASK}"}}'),
        ("{'id_token': 'abc'}", f"{{'id_token': '{MASK}'}}"),
        ("access_token=abc123&token_type=bearer", f"access_token={MASK}&token_type=bearer"),
        ("client_secret=zz&password=pp", f"client_secret={MASK}&password={MASK}"),
        ("Authorization: Bearer abcdefgh1234", f"Authorization: Bearer {MASK}"),
        ('Bearer realm="api", error="invalid_token"', 'Bearer realm="api", error="invalid_token"'),
        ("my_access_token_key=abc", "my_access_token_key=abc"),
    ],
)
def test_redact_text_masks_token_values_without_known_secrets(text: str, expected: str) -> None:
    assert redact_text(text, secrets=()) == expected


def test_redact_text_empty() -> None:
    assert redact_text("", secrets=["whatever"]) == ""


def test_redact_json_deep_copy() -> None:
    original = {
        "access_token": "at-1",
        "token_type": "Bearer",
        "nested": {"client_secret": "cs", "note": f"echo {SECRET} here", "empty_token": ""},
        "items": [{"password": "pw"}, "plain", 3],
        "custom": "value-x",
    }
    redacted = redact_json(original, secrets=[SECRET], sensitive_keys=["custom"])
    assert redacted == {
        "access_token": MASK,
        "token_type": "Bearer",
        "nested": {"client_secret": MASK, "note": f"echo {MASK} here", "empty_token": ""},
        "items": [{"password": MASK}, "plain", 3],
        "custom": MASK,
    }
    assert original["nested"]["client_secret"] == "cs"  # the input is untouched


def test_the_browser_pattern_is_the_servers() -> None:
    """The form's JavaScript restates the sensitive-name rule; it must not drift from ours."""
    import json
    import re
    from pathlib import Path

    from connectors.oauth_http import redaction

    script = (Path(__file__).resolve().parent.parent / "static/connectors/connector_form.js")
    source = script.read_text(encoding="utf-8")
    pattern = re.search(r"const SENSITIVE_KEY = /(.+)/i;", source)
    harmless = re.search(r"const HARMLESS_KEYS = new Set\((\[.*?\])\);", source)
    assert pattern and harmless, "connector_form.js no longer declares the rule where expected"
    assert pattern[1] == redaction.SENSITIVE_KEY_PATTERN.pattern
    assert redaction.SENSITIVE_KEY_PATTERN.flags & re.IGNORECASE
    assert set(json.loads(harmless[1])) == set(redaction.HARMLESS_KEYS)
