"""The connector list page: query count and median server time at 10 and at 10,000 connectors.

    .venv/bin/python benchmarks/list_bench.py                    # SQLite in a temp folder
    BENCH_DATABASE_URL=postgres://postgres@127.0.0.1:5432/list_bench .venv/bin/python \
        benchmarks/list_bench.py                                  # an empty PostgreSQL database

Each connector gets two recorded test runs, so the "last test" column does real work. The query
count must be the same at both sizes.
"""

from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _setup import django_on_fresh_database  # noqa: E402

SIZES = (10, 10_000)
REPS = 30


def fill(total: int) -> None:
    from django.utils import timezone

    from audit.models import TestRun
    from connectors.models import Connector

    existing = Connector.objects.count()
    connectors = [
        Connector(
            name=f"connector_{index:05d}",
            display_name=f"Connector {index}",
            base_url=f"https://api{index}.example.com",
            auth_config=("oauth2", "basic", "api_key", "bearer", "none")[index % 5],
            oauth2_client_secret="bench-secret" if index % 5 == 0 else "",
        )
        for index in range(existing, total)
    ]
    Connector.objects.bulk_create(connectors, batch_size=1000)
    now = timezone.now()
    runs = [
        TestRun(
            connector_id=c.pk,
            connector_name=c.name,
            source="saved",
            started_at=now,
            ok=attempt == 1,
            outcome="success" if attempt == 1 else "invalid_client",
        )
        for c in Connector.objects.filter(name__in=[c.name for c in connectors]).only("pk", "name")
        for attempt in (0, 1)
    ]
    TestRun.objects.bulk_create(runs, batch_size=1000)


def measure(client, path: str) -> tuple[int, float]:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as queries:
        assert client.get(path).status_code == 200
    count = len(queries)  # now: the log is reset by the next request
    timings = []
    for _ in range(REPS):
        started = time.perf_counter()
        response = client.get(path)
        timings.append((time.perf_counter() - started) * 1000)
        assert response.status_code == 200
    return count, statistics.median(timings)


def main() -> None:
    url = django_on_fresh_database("list")
    from django.contrib.auth.models import Group, User
    from django.test import Client

    user = User.objects.create_user("bench", password="bench-password-1")
    user.groups.add(Group.objects.get(name="Connector viewers"))
    client = Client()
    client.force_login(user)
    print(f"database: {url.split('@')[-1]}")
    print(f"{'connectors':>10} {'page':<28} {'queries':>7} {'median ms':>9}")
    for size in SIZES:
        fill(size)
        for label, path in (
            ("first page", "/connectors/"),
            ("search", "/connectors/?q=connector_00&auth=oauth2"),
            ("sorted by last test", "/connectors/?sort=-tested"),
            ("last page", f"/connectors/?page={max(1, -(-size // 25))}"),
        ):
            count, median = measure(client, path)
            print(f"{size:>10} {label:<28} {count:>7} {median:>9.1f}")


if __name__ == "__main__":
    main()
