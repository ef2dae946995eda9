"""The connector list and the dashboard: query count and median server time at 10 and at
10,000 connectors, with realistic history (about 40 recorded runs per tested connector).

    .venv/bin/python benchmarks/list_bench.py                    # SQLite in a temp folder
    BENCH_DATABASE_URL=postgres://postgres@127.0.0.1:5432/list_bench .venv/bin/python \
        benchmarks/list_bench.py                                  # an empty PostgreSQL database

The history: over the last 60 days, 40 runs per connector, written in time order (a token
attempt for each run of an Oauth2 connector, against one of 40 token servers); about 1
connector in 10 failing now, 1 in 20 stale (last tested more than CONNECTORS_STALE_DAYS ago),
1 in 20 never tested, and a third with a Client Secret expiry date. Health rows are then
rebuilt from those runs with the code the backfill migration runs (connector_health_backfill),
which is also timed.
The query count of every page must be the same at both sizes, with one exception by design:
a page of a sort on a column some connectors lack (last test, failing since, expiry) is read in
two parts, those with a value along its index and then the rest by name
(connectors.selectors.NullsLastList), so a page that spans both parts makes one more query.
At 10 connectors the first such page holds tested and never-tested ones (11 queries); at
10,000 it holds tested ones only (10). The count is bounded, not growing with the list.

Figures (2026-11-30, idle 2-core machine; median ms at 10,000 connectors, 380,000 runs):
SQLite: first page 19.9, sorted by last test 21.7, health=failing 34.6, dashboard 132.7;
PostgreSQL 15: first page 26.8, sorted by last test 28.6, health=failing 31.4, dashboard 118.8.
The version before (6cb12c3, with three more indexes on the runs and attempts), in the same
machine state: SQLite 19.3 / 21.8 / 33.4 / 132.1, PostgreSQL 28.6 / 29.0 / 30.4 / 120.7.
"""

from __future__ import annotations

import datetime as dt
import random
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _setup import django_on_fresh_database  # noqa: E402

SIZES = (10, 10_000)
REPS = 30
RUNS_PER_CONNECTOR = 40
HISTORY_DAYS = 60
AUTH_CONFIGS = ("oauth2", "basic", "api_key", "bearer", "none")


def _profile(index: int) -> str:
    """What a connector's history looks like: mostly passing, some failing, stale or untested."""
    return {0: "never", 1: "stale", 2: "failing", 3: "failing"}.get(index % 20, "passing")


def _runs_for(connector, index: int, now, rng: random.Random):
    from audit.models import TestAttempt, TestRun

    profile = _profile(index)
    if profile == "never":
        return []
    last = now - dt.timedelta(days=rng.uniform(8, 20) if profile == "stale" else rng.uniform(0, 1))
    step = dt.timedelta(days=HISTORY_DAYS / RUNS_PER_CONNECTOR)
    oauth2 = connector.auth_config == "oauth2"
    made = []
    for position in range(RUNS_PER_CONNECTOR):
        started = last - step * (RUNS_PER_CONNECTOR - 1 - position)
        # The failing ones have failed for their last few runs; the rest fail now and then.
        failing_now = profile == "failing" and position >= RUNS_PER_CONNECTOR - 1 - index % 5
        ok = not failing_now and rng.random() > 0.05
        run = TestRun(
            connector_id=connector.pk,
            connector_name=connector.name,
            source="saved" if position % 4 else "cli",
            started_at=started,
            duration_ms=rng.randint(40, 900),
            ok=ok,
            outcome="success" if ok else rng.choice(("invalid_client", "timeout", "http_error")),
            message="bench",
            token={"expires_at": (started + dt.timedelta(hours=1)).timestamp()} if ok else None,
        )
        attempt = None
        if oauth2:
            attempt = TestAttempt(
                position=1,
                step="token",
                method="POST",
                url=f"https://login{index % 40}.example.com/tenant-{index}/oauth2/token",
                duration_ms=int(rng.lognormvariate(4.5 + (index % 40) / 20, 0.6)),
                outcome=run.outcome,
            )
        made.append((run, attempt))
    return made


def fill(total: int) -> None:
    from django.db import transaction
    from django.utils import timezone

    from audit.models import TestAttempt, TestRun
    from connectors.models import Connector

    rng = random.Random(total)
    existing = Connector.objects.count()
    today = timezone.localdate()
    new = [
        Connector(
            name=f"connector_{index:05d}",
            display_name=f"Connector {index}",
            base_url=f"https://api{index}.example.com",
            auth_config=AUTH_CONFIGS[index % 5],
            oauth2_client_secret="bench-secret" if index % 5 == 0 else "",
            client_secret_expires_on=(
                today + dt.timedelta(days=rng.randint(-5, 400)) if index % 3 == 0 else None
            ),
        )
        for index in range(existing, total)
    ]
    Connector.objects.bulk_create(new, batch_size=1000)
    saved = Connector.objects.filter(name__in=[c.name for c in new]).only(
        "pk", "name", "auth_config"
    )
    now = timezone.now()
    pairs = []
    for connector in saved:
        pairs += _runs_for(connector, int(connector.name.rsplit("_", 1)[1]), now, rng)
    # Recorded as time went by: ids follow the start times, as they do in a real database.
    pairs.sort(key=lambda pair: pair[0].started_at)
    with transaction.atomic():
        runs = TestRun.objects.bulk_create([run for run, _ in pairs], batch_size=2000)
        attempts = []
        for run, (_, attempt) in zip(runs, pairs, strict=True):
            if attempt is not None:
                attempt.run_id = run.pk
                attempts.append(attempt)
        TestAttempt.objects.bulk_create(attempts, batch_size=2000)


def analyze() -> None:
    """Fresh statistics, as autovacuum would have gathered on a database that grew over time."""
    from django.db import connection

    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE")


def backfill() -> float:
    from django.db import transaction

    from connectors.health import connector_health_backfill

    started = time.perf_counter()
    with transaction.atomic():
        connector_health_backfill()
    return (time.perf_counter() - started) * 1000


def measure(client, path: str) -> tuple[int, float, float]:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    client.get(path)  # warm: the first request after a fill may also refresh the session
    with CaptureQueriesContext(connection) as queries:
        assert client.get(path).status_code == 200
    count = len(queries)  # now: the log is reset by the next request
    timings = []
    for _ in range(REPS):
        started = time.perf_counter()
        response = client.get(path)
        timings.append((time.perf_counter() - started) * 1000)
        assert response.status_code == 200
    return count, statistics.median(timings), statistics.quantiles(timings, n=20)[-1]


def main() -> None:
    url = django_on_fresh_database("list")
    from django.contrib.auth.models import Group, User
    from django.test import Client

    from audit.models import TestRun

    user = User.objects.create_user("bench", password="bench-password-1")
    user.groups.add(Group.objects.get(name="Connector viewers"))
    client = Client()
    client.force_login(user)
    print(f"database: {url.split('@')[-1]}")
    for size in SIZES:
        started = time.perf_counter()
        fill(size)
        filled = time.perf_counter() - started
        rebuilt = backfill()
        analyze()
        print(
            f"\n{size} connectors, {TestRun.objects.count()} runs "
            f"(filled in {filled:.0f} s; health backfill {rebuilt:.0f} ms)"
        )
        print(f"{'page':<34} {'queries':>7} {'median ms':>9} {'p95 ms':>7}")
        for label, path in (
            ("first page", "/connectors/"),
            ("search", "/connectors/?q=connector_00&auth=oauth2"),
            ("sorted by last test", "/connectors/?sort=-tested"),
            ("sorted by failing since", "/connectors/?sort=failing"),
            ("health=failing, failing since", "/connectors/?health=failing&sort=failing"),
            ("health=stale", "/connectors/?health=stale"),
            ("outcome=timeout", "/connectors/?outcome=timeout"),
            ("expiring=30, by expiry", "/connectors/?expiring=30&sort=expires"),
            ("last page", f"/connectors/?page={max(1, -(-size // 25))}"),
            ("dashboard", "/dashboard/"),
        ):
            count, median, p95 = measure(client, path)
            print(f"{label:<34} {count:>7} {median:>9.1f} {p95:>7.1f}")


if __name__ == "__main__":
    main()
