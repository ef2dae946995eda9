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


# --------------------------------------------------------------------------------------------
# Issue 8: echoes of a secret, altered by the server


ECHOED = "Sup3r-Secret+Valué"


@pytest.mark.parametrize(
    "form",
    [
        ECHOED.upper(),
        ECHOED.lower(),
        "sUP3R-sECRET+vALUÉ",  # mixed case
        ECHOED.encode().hex(),
        ECHOED.encode().hex().upper(),
        ECHOED[:8],
        ECHOED[:12],
        ECHOED.encode().decode("latin-1"),  # UTF-8 read as Latin-1
        ECHOED.encode().decode("cp1252"),
        base64.b64encode(ECHOED.encode()).decode(),
        json.dumps(ECHOED.upper())[1:-1],
    ],
)
def test_redact_echoes_masks_altered_forms(form: str) -> None:
    from connectors.oauth_http.redaction import redact_echoes

    text = f"server said: {form} (end)"
    masked = redact_echoes(text, secrets=[ECHOED])
    assert form not in masked
    assert masked == f"server said: {MASK} (end)"


def test_redact_text_masks_exact_altered_forms_but_not_prefixes() -> None:
    for form in (ECHOED.upper(), ECHOED.lower(), ECHOED.encode().hex().upper()):
        assert redact_text(form, secrets=[ECHOED]) == MASK
    # The console's own texts keep ordinary words that begin a secret.
    assert redact_text("secret replaced", secrets=["replaced-secret"]) == "secret replaced"


def test_a_prefix_shorter_than_8_is_not_masked() -> None:
    from connectors.oauth_http.redaction import redact_echoes

    assert redact_echoes("Sup3r-S is fine", secrets=[ECHOED]) == "Sup3r-S is fine"


# --------------------------------------------------------------------------------------------
# Issue 8: response bodies masked by key


def test_token_body_is_default_deny_at_any_depth() -> None:
    from connectors.oauth_http.body_masking import mask_token_body

    body = json.dumps(
        {
            "AuthenticationResult": {
                "AccessToken": "cog-at-1",
                "RefreshToken": "cog-rt-2",
                "IdToken": "cog-id-3",
                "TokenType": "Bearer",
                "ExpiresIn": 3600,
            },
            "data": {"token": "data-tok-4", "items": ["list-tok-5"]},
            "apiKey": "api-key-6",
            "session_key": "sess-7",
            "scope": "read write",
            "error_description": "nothing wrong, but here is cog-rt-2 again",
        }
    )
    masked = mask_token_body(body, secrets=[])
    for value in ("cog-at-1", "cog-rt-2", "cog-id-3", "data-tok-4", "list-tok-5", "api-key-6"):
        assert value not in masked
    assert "sess-7" not in masked
    assert '"TokenType": "Bearer"' in masked and '"ExpiresIn": 3600' in masked
    assert '"scope": "read write"' in masked


def test_token_body_cut_in_the_middle_is_still_masked() -> None:
    from connectors.oauth_http.body_masking import mask_token_body

    masked = mask_token_body('{"token_type": "x", "refreshToken": "abcdefgh-cut-he', secrets=[])
    assert "abcdefgh" not in masked and '"token_type": "x"' in masked


def test_form_encoded_token_body_is_default_deny() -> None:
    from connectors.oauth_http.body_masking import mask_token_body

    masked = mask_token_body("access_token=f-1&id_token=f-2&token_type=bearer", secrets=[])
    assert masked == f"access_token={MASK}&id_token={MASK}&token_type=bearer"


def test_other_bodies_mask_sensitive_keys_at_any_depth() -> None:
    from connectors.oauth_http.body_masking import mask_body

    body = '{"me": "alice", "session": {"id": "s-1"}, "items": [{"apiKey": "k-2", "n": "x"}]}'
    masked = mask_body(body, secrets=[])
    assert "s-1" not in masked and "k-2" not in masked
    assert '"me": "alice"' in masked and '"n": "x"' in masked


# --------------------------------------------------------------------------------------------
# Issue 10: a text without any form of a secret is not searched with a compiled pattern


def test_texts_without_a_secret_do_not_compile_a_pattern() -> None:
    # Each test brings secrets of its own (and a fresh token): compiling their pattern for every
    # header and body was a third of a connection test's CPU time.
    from connectors.oauth_http import redaction

    secrets = ["fresh-secret-for-this-test-1", "fresh-token-for-this-test-2"]
    before = redaction._compiled_secrets_pattern.cache_info().misses
    prefixes_before = redaction._prefix_pattern.cache_info().misses
    assert redaction.redact_echoes("application/json; charset=utf-8", secrets=secrets) == (
        "application/json; charset=utf-8"
    )
    assert redaction.redact_text('{"token_type": "Bearer"}', secrets=secrets) == (
        '{"token_type": "Bearer"}'
    )
    assert redaction._compiled_secrets_pattern.cache_info().misses == before
    assert redaction._prefix_pattern.cache_info().misses == prefixes_before
    # ...and a text that holds one still does, and is masked.
    assert redaction.redact_echoes("x FRESH-SECRET-FOR-THIS-TEST-1 y", secrets=secrets) == (
        f"x {MASK} y"
    )
    assert redaction._compiled_secrets_pattern.cache_info().misses == before + 1


@pytest.mark.parametrize(
    "echo",
    [
        "\u212aelvin-secret-value",  # KELVIN SIGN: re's IGNORECASE equates it with "k"
        "kelvın-secret-value",  # dotless i
        "kelvin-ſecret-value",  # long s
        "\u212aelvin-sec",  # a cut echo (its first 8+ characters) with the KELVIN SIGN
    ],
)
def test_case_insensitive_echoes_beyond_ascii_are_still_masked(echo: str) -> None:
    from connectors.oauth_http.redaction import redact_echoes

    assert redact_echoes(f"server said {echo}!", secrets=["kelvin-secret-value"]) == (
        f"server said {MASK}!"
    )
