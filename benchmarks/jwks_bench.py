"""Jwks Auth's per-request cost and the public JWK Set, with the console's real key set.

    .venv/bin/python benchmarks/jwks_bench.py          # SQLite in a temp folder

Prints the median time of: signing one Jwks Auth token (the signing key read and decrypted,
claims built, RS256 signature, as ConnectorAuth does for every request), serving
/.well-known/jwks.json during a rotation (two keys), one scheduler run when nothing is due, and
one rotation (an RSA 2048 key generated).
"""

from __future__ import annotations

import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _setup import django_on_fresh_database  # noqa: E402

ROUNDS = 200


def median_ms(action: Callable[[], object], rounds: int = ROUNDS) -> float:
    samples = []
    for _ in range(rounds):
        started = time.perf_counter()
        action()
        samples.append((time.perf_counter() - started) * 1000)
    return statistics.median(samples)


def main() -> None:
    django_on_fresh_database("jwks")
    from django.test import Client

    from connectors.jwks import jwks_auth_token, jwks_generate, jwks_rotate_due, jwks_rotate_now
    from connectors.models import Connector, JwksKey

    connector = Connector.objects.create(
        name="bench_jwks",
        base_url="https://api.example.com",
        auth_config="jwks_auth",
        jwt_issuer="connector-console",
        jwt_subject="svc",
    )
    jwks_generate(user=None)
    jwks_rotate_now(user=None)
    client = Client()
    assert client.get("/.well-known/jwks.json").status_code == 200
    signing = median_ms(lambda: jwks_auth_token(connector=connector))
    print(f"sign one Jwks Auth token:      {signing:7.2f} ms")
    document = median_ms(lambda: client.get("/.well-known/jwks.json"))
    print(f"GET /.well-known/jwks.json:    {document:7.2f} ms")
    print(f"scheduler run, nothing due:    {median_ms(jwks_rotate_due):7.2f} ms")
    JwksKey.objects.all().delete()
    jwks_generate(user=None)
    generation = median_ms(lambda: (JwksKey.objects.exclude(reason="generate").delete(),
                                    JwksKey.objects.update(retires_at=None, unpublish_at=None),
                                    jwks_rotate_now(user=None)), rounds=20)  # fmt: skip
    print(f"Rotate now (RSA 2048 made):    {generation:7.2f} ms")


if __name__ == "__main__":
    main()
