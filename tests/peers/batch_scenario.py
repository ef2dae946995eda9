"""Steps of a batch scenario run in their own processes on a file database (DATABASE_URL).

    python -m tests.peers.batch_scenario setup N TOKEN_URL   # N connectors on TOKEN_URL
    python -m tests.peers.batch_scenario start               # batch of all; prints its id
    python -m tests.peers.batch_scenario wait ID             # reaps and waits; prints states
    python -m tests.peers.batch_scenario report ID           # JSON: states, runs per connector,
                                                             # audit chain verified or not

The worker test (tests/test_batches_worker.py) and the benchmark drive a real worker with them:
the worker is another process, which pytest-django's in-memory database would be invisible to.
"""

from __future__ import annotations

import json
import os
import sys
from collections import Counter

import django


def _setup(count: int, token_url: str) -> None:
    from connectors.models import Connector

    Connector.objects.bulk_create(
        Connector(
            name=f"bulk_{index:05d}",
            base_url="https://api.example.com",
            enabled=True,
            auth_config="oauth2",
            oauth2_grant_type="client_credentials",
            oauth2_client_id=f"client-{index}",
            oauth2_client_secret="bulk-secret-1",
            oauth2_token_url=token_url,
        )
        for index in range(count)
    )


def _start() -> None:
    from connectors.batches import batch_start
    from connectors.models import Connector

    ids = list(Connector.objects.values_list("pk", flat=True))
    batch = batch_start(user_or_system=None, connector_ids=ids, filter_description="scenario",
                        source="cli")  # fmt: skip
    print(batch.pk, flush=True)


def _chain_verified() -> str:
    """audit_verify's verdict: "ok", or its message."""
    from io import StringIO

    from django.core.management import call_command
    from django.core.management.base import CommandError

    try:
        call_command("audit_verify", stdout=StringIO())
    except CommandError as exc:
        return str(exc)
    return "ok"


def _report(batch_id: int) -> None:
    from audit.models import TestRun
    from connectors.models import BatchItem

    states = Counter(BatchItem.objects.filter(batch_id=batch_id).values_list("state", flat=True))
    runs = Counter(TestRun.objects.values_list("connector_name", flat=True))
    print(json.dumps({
        "states": dict(states),
        "runs": len(runs),
        "recorded_twice": sorted(name for name, n in runs.items() if n > 1),
        "chain": _chain_verified(),
    }), flush=True)  # fmt: skip


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    django.setup()
    step, *args = sys.argv[1:]
    if step == "setup":
        _setup(int(args[0]), args[1])
    elif step == "start":
        _start()
    elif step == "wait":
        from connectors.batches import batch_wait
        from connectors.models import Batch

        batch_wait(batch=Batch.objects.get(pk=int(args[0])), poll=0.2, timeout=float(args[1]))
    elif step == "report":
        _report(int(args[0]))


if __name__ == "__main__":
    main()
