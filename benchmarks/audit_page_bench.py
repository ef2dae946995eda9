"""The audit page at 200 and at 10,000 connectors: page size and median server time (not a test).

    .venv/bin/python benchmarks/audit_page_bench.py                  # SQLite in a temp folder
    BENCH_DATABASE_URL=postgres://postgres@127.0.0.1:5432/audit_pages .venv/bin/python \\
        benchmarks/audit_page_bench.py                                # an empty PostgreSQL database
    BENCH_CODE=/path/to/other/checkout .venv/bin/python benchmarks/audit_page_bench.py
        # the same measurement of another checkout's code (e.g. before the type-ahead)

Each size gets its connectors, 40 users, and --per-connector audit records per connector (a mix
of changes, test-run records and denials, newest last), then the list page is fetched through
Django's test Client in this process: unfiltered, filtered by connector (an id link and a name),
by user (by name), and the type-ahead's suggest endpoint. The records' hashes are placeholders:
this bench reads pages and never verifies the chain (audit_bench.py --verify does).
Target: the page's size no longer grows with the number of connectors.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import random
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _setup  # noqa: E402
from _setup import django_on_fresh_database  # noqa: E402

SIZES = (200, 10_000)
USERS = 40
KINDS = (("change", "edit", "ok"), ("test_run", "test", "success"), ("denial", "blocked", ""))


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=20)
    parser.add_argument("--per-connector", type=int, default=40, help="Audit records each.")
    return parser.parse_args()


def grow(connectors: int, per_connector: int) -> None:
    """Add connectors (and their records) until there are `connectors` of them."""
    from django.contrib.auth.models import User

    from audit.models import AuditEvent
    from connectors.models import Connector

    if not User.objects.filter(username__startswith="bench_").exists():
        User.objects.bulk_create(User(username=f"bench_{i:02d}") for i in range(USERS))
    users = list(User.objects.filter(username__startswith="bench_").values_list("pk", "username"))
    have = Connector.objects.count()
    Connector.objects.bulk_create(
        (
            Connector(name=f"conn_{i:05d}", auth_config="oauth2", oauth2_client_id=f"client-{i}")
            for i in range(have, connectors)
        ),
        batch_size=2000,
    )
    new = list(Connector.objects.filter(name__gte=f"conn_{have:05d}").values_list("pk", "name"))
    rng = random.Random(connectors)
    now = dt.datetime.now(dt.UTC)
    records = [
        (connector, rng.choice(users), rng.choice(KINDS))
        for connector in new
        for _ in range(per_connector)
    ]
    rng.shuffle(records)  # interleaved in time, as real activity is
    batch: list[AuditEvent] = []
    for index, ((cid, cname), (uid, uname), (kind, action, outcome)) in enumerate(records):
        batch.append(
            AuditEvent(
                created_at=now - dt.timedelta(seconds=len(records) - index),
                kind=kind,
                action=action,
                user_id=uid,
                username=uname,
                connector_id=cid,
                connector_name=cname,
                outcome=outcome,
                summary=f"{action} {cname}",
                prev_hash="0" * 64,
                hash="0" * 64,
            )
        )
        if len(batch) >= 5000:
            AuditEvent.objects.bulk_create(batch)
            batch.clear()
    AuditEvent.objects.bulk_create(batch)


def timed(client: Any, url: str, reps: int) -> tuple[float, int]:
    """(median ms, bytes) of GET url; (nan, 0) where this code has no such page."""
    first = client.get(url)
    if first.status_code == 404:
        return float("nan"), 0
    assert first.status_code == 200, (url, first.status_code)
    timings = []
    for _ in range(reps):
        began = time.perf_counter()
        response = client.get(url)
        timings.append((time.perf_counter() - began) * 1000)
    return statistics.median(timings), len(response.content)


def measure(size: int, reps: int) -> None:
    from django.contrib.auth.models import Group, User
    from django.db import connection
    from django.test import Client

    from connectors.models import Connector

    viewer, _ = User.objects.get_or_create(username="bench_viewer")
    viewer.groups.add(Group.objects.get(name="Connector viewers"))
    client = Client()
    client.force_login(viewer)
    some = Connector.objects.order_by("name").values_list("pk", "name")[size // 2]
    cases = (
        ("/audit/", "first page"),
        (f"/audit/?connector={some[0]}", "connector filter, id link"),
        (f"/audit/?connector={some[1]}", "connector filter, by name"),
        ("/audit/?user=bench_07&kind=change", "user filter, by name"),
        ("/audit/suggest/connector/?q=conn_001", "suggest endpoint"),
    )
    for url, label in cases:
        ms, size_bytes = timed(client, url, reps)
        print(
            f"  {connection.vendor:<10} {size:>6,} connectors  {label:<27} "
            f"{size_bytes / 1024:7.1f} KB  {ms:7.1f} ms median of {reps}  {url}"
        )


def main() -> None:
    args = parse_args()
    other = os.environ.get("BENCH_CODE")
    if other:  # another checkout's code: _setup puts its ROOT first on the path
        _setup.ROOT = Path(other).resolve()
    url = django_on_fresh_database("audit-pages")
    import audit

    print(f"Database: {url.split('@')[-1]}; code: {Path(audit.__file__).parent.parent}")
    for size in SIZES:
        began = time.perf_counter()
        grow(size, args.per_connector)
        print(
            f"  ({size:,} connectors, {size * args.per_connector:,} records, "
            f"filled in {time.perf_counter() - began:.0f} s)"
        )
        measure(size, args.reps)


if __name__ == "__main__":
    main()
