"""Across a rotation, against the live console: a loopback API verifies tokens with PyJWT's
PyJWKClient at the live server's /.well-known/jwks.json (tests/peers/jwks_api.py).

The console's clock cannot be moved from outside, so time travels by moving the key rows'
dates, exactly as far as the scheduled rotation would have moved them.
"""

from __future__ import annotations

import datetime as dt

import jwt
import pytest
import requests
from django.utils import timezone

from connectors.jwks import jwks_generate, jwks_rotate_due, jwks_signing_key
from connectors.models import JwksKey
from tests.peers.jwks_api import JwksApi

pytestmark = pytest.mark.django_db(transaction=True)

ISSUER = "connector-console"
AUDIENCE = "https://api.example.test"
HOUR = dt.timedelta(hours=1)
DAY = dt.timedelta(days=1)


def token_now() -> str:
    """A token as Jwks Auth signs one: RS256, the current kid, a short lifetime."""
    key = jwks_signing_key()
    now = int(timezone.now().timestamp())
    claims = {"iss": ISSUER, "sub": "svc", "aud": AUDIENCE, "iat": now, "exp": now + 300}
    claims["jti"] = f"jti-{now}-{key.kid[:8]}"
    return jwt.encode(claims, key.private_key_pem, algorithm="RS256", headers={"kid": key.kid})


def call(api: JwksApi, token: str) -> int:
    response = requests.get(api.url(), headers={"Authorization": f"Bearer {token}"}, timeout=10)
    return response.status_code


def shift(kid: str, delta: dt.timedelta) -> None:
    """Move one key's whole life by `delta` (negative: into the past)."""
    key = JwksKey.objects.get(kid=kid)
    for name in ("publish_at", "activates_at", "retires_at", "unpublish_at"):
        value = getattr(key, name)
        if value is not None:
            setattr(key, name, value + delta)
    key.save()


def test_old_tokens_pass_in_the_grace_period_and_fail_after_it(live_server):
    jwks_url = f"{live_server.url}/.well-known/jwks.json"
    # The first key, made 90 days minus a minute ago: the rotation is due (24 hours grace).
    now = timezone.now()
    first = jwks_generate(user=None, now=now - 90 * DAY + 24 * HOUR - dt.timedelta(minutes=1)).kid
    with JwksApi(jwks_url, issuer=ISSUER, audience=AUDIENCE) as api:
        old_token = token_now()
        assert call(api, old_token) == 200
        assert api.results[-1].kid == first

        # The scheduler's run: the next key is published now, but the old key still signs.
        rotation = jwks_rotate_due()
        assert rotation.rotated and rotation.previous_kid == first
        second = rotation.kid
        published = {jwk["kid"] for jwk in requests.get(jwks_url, timeout=10).json()["keys"]}
        assert published == {first, second}
        assert jwks_signing_key().kid == first
        assert call(api, token_now()) == 200 and api.results[-1].kid == first

        # 24 hours later (both keys' dates moved back a day) the new key signs.
        shift(first, -DAY)
        shift(second, -DAY)
        assert jwks_signing_key().kid == second
        new_token = token_now()
        assert call(api, new_token) == 200 and api.results[-1].kid == second
        # Within the grace period, the old key's token still passes.
        assert call(api, old_token) == 200 and api.results[-1].kid == first

        # Past the grace period the old key has left the document: its token fails.
        shift(first, -DAY)
        shift(second, -DAY)
        published = {jwk["kid"] for jwk in requests.get(jwks_url, timeout=10).json()["keys"]}
        assert published == {second}
        assert call(api, old_token) == 401
        assert "Unable to find a signing key" in api.results[-1].error
        assert call(api, new_token) == 200

        # The scheduler's next run deletes the old private key.
        assert jwks_rotate_due().retired == (first,)
        assert JwksKey.objects.get(kid=first).private_key_pem == ""
