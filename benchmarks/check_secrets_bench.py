"""Reading every stored secret: the full scan and `manage.py check`'s cheap check, at 10,000.

    .venv/bin/python benchmarks/check_secrets_bench.py          # SQLite in a temp folder
    BENCH_DATABASE_URL=postgres://postgres@127.0.0.1:5432/secrets_bench .venv/bin/python \
        benchmarks/check_secrets_bench.py                        # an empty PostgreSQL database

Every connector holds two OAuth2 secrets and one sensitive token request row; its other secret
columns hold the encrypted empty string, which is read too, so 10,000 connectors are 80,000
decryptions. Prints the time and the peak Python memory of each.
"""

from __future__ import annotations

import sys
import time
import tracemalloc
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _setup import django_on_fresh_database  # noqa: E402

TOTAL = 10_000


def fill(total: int) -> None:
    from connectors.models import Connector, TokenRequestParam

    Connector.objects.bulk_create(
        [
            Connector(
                name=f"connector_{index:05d}",
                base_url=f"https://api{index}.example.com",
                auth_config="oauth2",
                oauth2_client_id=f"client-{index}",
                oauth2_client_secret=f"bench-client-secret-{index}",
                oauth2_password=f"bench-password-{index}",
                oauth2_token_url="https://login.example.com/token",
            )
            for index in range(total)
        ],
        batch_size=1000,
    )
    TokenRequestParam.objects.bulk_create(
        [
            TokenRequestParam(
                connector_id=pk, kind="data", key="tenant_secret", value="t-1", sensitive=True
            )
            for pk in Connector.objects.values_list("pk", flat=True)
        ],
        batch_size=1000,
    )


def timed(label: str, action) -> None:
    """Time without tracing (tracemalloc slows Python down), then trace the memory once."""
    started = time.perf_counter()
    result = action()
    seconds = time.perf_counter() - started
    tracemalloc.start()
    action()
    _current, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    print(f"{label}: {seconds:.2f} s, peak Python memory {peak / 1024 / 1024:.1f} MiB -> {result}")


def main() -> None:
    url = django_on_fresh_database("secrets")
    from connectors.checks import encryption_key_reads_stored_secrets, stored_secrets_unreadable

    fill(TOTAL)
    print(f"{TOTAL} connectors on {url.split(':', 1)[0]}")
    timed("check (newest connector and row)", lambda: encryption_key_reads_stored_secrets(None))
    timed("full scan", lambda: sum(1 for _ in stored_secrets_unreadable()))


if __name__ == "__main__":
    main()
