"""The API list (GET /api/v1/connectors/) against the HTML list page, on 10,000 connectors.

    .venv/bin/python benchmarks/api_bench.py              # SQLite in a temp folder
    BENCH_DATABASE_URL=postgres://... .venv/bin/python benchmarks/api_bench.py

The data is list_bench's (10,000 connectors, 40 runs per tested one, health rows rebuilt).
Checks: the API makes the same number of queries at every page size (keyset pages, one query
for the page and one for the token), and its median is at most 1.5x the HTML page's for the
same rows (page size = the HTML page's CONNECTORS_PAGE_SIZE), with a personal token.

Figures (SQLite, the shared 2-core development machine, 10,000 connectors, medians of 30):
API list 5 queries at page sizes 10/25/50/100/200, 11.4/15.5/15.9/21.7/31.7 ms; the HTML list
page (25 rows) 9 queries, 50.5 ms; API / HTML at 25 rows 0.31x (limit 1.5x).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
# The benchmark sends hundreds of requests a minute with one token.
os.environ.setdefault("API_RATE_LIMIT", "1000000/min")
from _setup import django_on_fresh_database  # noqa: E402

SIZE = 10_000
PAGE_SIZES = (10, 25, 50, 100, 200)
LIMIT_RATIO = 1.5


def main() -> None:
    url = django_on_fresh_database("api")
    import list_bench
    from django.conf import settings
    from django.contrib.auth.models import Group, User
    from django.test import Client

    from connectors.api.tokens import api_token_create

    user = User.objects.create_user("bench", password="bench-password-1")
    user.groups.add(Group.objects.get(name="Connector viewers"))
    page_client = Client()
    page_client.force_login(user)
    token = api_token_create(user=user, name="bench", expires_days=1)
    api_client = Client(HTTP_AUTHORIZATION=f"Token {token}")
    list_bench.fill(SIZE)
    list_bench.backfill()
    list_bench.analyze()
    print(f"database: {url.split('@')[-1]}; {SIZE} connectors")
    print(f"{'request':<44} {'queries':>7} {'median ms':>9} {'p95 ms':>7}")
    counts = set()
    api_medians = {}
    for size in PAGE_SIZES:
        path = f"/api/v1/connectors/?page_size={size}"
        count, median, p95 = list_bench.measure(api_client, path)
        counts.add(count)
        api_medians[size] = median
        print(f"{'API list, page_size=' + str(size):<44} {count:>7} {median:>9.1f} {p95:>7.1f}")
    for label, path in (
        ("API list, health=failing", "/api/v1/connectors/?health=failing"),
        ("API list, q + auth", "/api/v1/connectors/?q=connector_00&auth=oauth2"),
        ("API list, page 3 (cursor)", None),
    ):
        if path is None:
            first = api_client.get("/api/v1/connectors/?page_size=25").json()
            path = api_client.get(first["next"]).json()["next"]
        count, median, p95 = list_bench.measure(api_client, path)
        print(f"{label:<44} {count:>7} {median:>9.1f} {p95:>7.1f}")
    html_size = settings.CONNECTORS_PAGE_SIZE
    count, html_median, p95 = list_bench.measure(page_client, "/connectors/")
    label = f"HTML list page ({html_size} rows)"
    print(f"{label:<44} {count:>7} {html_median:>9.1f} {p95:>7.1f}")
    same = (
        api_medians.get(html_size)
        or list_bench.measure(api_client, f"/api/v1/connectors/?page_size={html_size}")[1]
    )
    ratio = same / html_median
    print(f"\nqueries at every page size: {sorted(counts)} (same: {len(counts) == 1})")
    print(f"API / HTML median at {html_size} rows: {ratio:.2f}x (limit {LIMIT_RATIO}x)")
    if len(counts) != 1 or ratio > LIMIT_RATIO:
        sys.exit(1)


if __name__ == "__main__":
    main()
