"""python manage.py connectors_test_all: test many connectors as one batch and wait for it."""

from __future__ import annotations

import json
import sys
import time
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from config.celery import RunnerUnreachable
from connectors.batch_local import batch_processes, batch_run_local
from connectors.batches import (
    HEALTH_CHOICES,
    BatchSelectionError,
    batch_connector_ids,
    batch_filter_description,
    batch_items,
    batch_progress,
    batch_start,
    batch_wait,
    workers_reachable,
)
from connectors.models_batch import Batch


class Command(BaseCommand):
    help = (
        "Test many connectors as one batch, recorded like the UI's tests: on the background "
        "workers when one answers, otherwise in this process. Exit 0 when all pass, 1 when any "
        "fails, 2 on bad usage."
    )

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument(
            "--connector", action="append", default=[], metavar="NAME",
            help="A connector to test (repeat for more). Default: every connector.",
        )  # fmt: skip
        parser.add_argument("--health", choices=list(HEALTH_CHOICES))
        parser.add_argument("--search", default="", help="Name, display name or base URL text.")
        parser.add_argument(
            "--concurrency", type=int, default=8,
            help="Tests at once when running in this process (default 8).",
        )  # fmt: skip
        parser.add_argument(
            "--json", action="store_true", dest="as_json", help="Print one JSON object."
        )

    def _connector_ids(self, names: list[str], health: str | None, search: str) -> list[int]:
        try:
            return batch_connector_ids(names=names, health=health, search=search)
        except BatchSelectionError as exc:
            raise CommandError(str(exc), returncode=2) from None

    def handle(self, *args: Any, **options: Any) -> None:
        if options["concurrency"] < 1:
            raise CommandError("--concurrency must be 1 or more.", returncode=2)
        ids = self._connector_ids(options["connector"], options["health"], options["search"])
        described = describe(options)
        say = self.stderr.write if options["as_json"] else self.stdout.write
        started = time.monotonic()
        batch = self._start(ids, described, say, options["concurrency"])
        batch = batch_wait(batch=batch)
        duration_ms = int((time.monotonic() - started) * 1000)
        document = summary(batch, duration_ms)
        if options["as_json"]:
            self.stdout.write(json.dumps(document, ensure_ascii=False))
        else:
            self._print(document, batch)
        if document["failed"] or document["ok"] != document["total"]:
            sys.exit(1)

    def _start(self, ids: list[int], described: str, say: Any, concurrency: int) -> Batch:
        # The embedded queue is polled once a second: allow a worker a few seconds to answer.
        if workers_reachable(timeout=2.0):
            try:
                batch = batch_start(
                    user_or_system=None, connector_ids=ids,
                    filter_description=described, source=Batch.Source.CLI,
                )  # fmt: skip
            except RunnerUnreachable:
                pass
            else:
                say(f"Batch #{batch.pk}: {batch.total} connectors, on the background workers.")
                return batch
        batch = batch_start(
            user_or_system=None, connector_ids=ids, filter_description=described,
            source=Batch.Source.CLI, dispatch=False,
        )  # fmt: skip
        processes = batch_processes(items=batch.total, concurrency=concurrency)
        where = "in this process" if processes == 1 else f"in {processes} processes of this command"
        say(
            f"Batch #{batch.pk}: {batch.total} connectors, {where} "
            f"(no background worker is reachable), {concurrency} at once."
        )
        batch_run_local(batch=batch, concurrency=concurrency, processes=processes)
        return batch

    def _print(self, document: dict[str, Any], batch: Batch) -> None:
        for row in document["results"]:
            mark = "ok  " if row["ok"] else "FAIL"
            self.stdout.write(
                f"{mark} {row['connector']}: {row['outcome']} ({row['duration_ms']} ms)"
            )
        outcomes = ", ".join(f"{k} {v}" for k, v in sorted(document["by_outcome"].items()))
        self.stdout.write(
            f"Batch #{batch.pk}: {document['ok']} of {document['total']} passed, "
            f"{document['failed']} failed in {document['duration_ms']} ms"
            + (f" ({outcomes})" if outcomes else "")
            + "."
        )


def describe(options: dict[str, Any]) -> str:
    """The command's selection in words, stored on the batch."""
    return batch_filter_description(
        names=options["connector"], health=options["health"], search=options["search"]
    )


def summary(batch: Batch, duration_ms: int) -> dict[str, Any]:
    """The documented JSON shape of a batch's result."""
    progress = batch_progress(batch=batch)
    results = [
        {
            "connector": item.connector_name,
            "ok": bool(item.ok),
            "outcome": item.outcome or item.state,
            "duration_ms": item.duration_ms or 0,
        }
        for item in batch_items(batch=batch)
    ]
    # Skipped and lost tests are failures too: they did not pass.
    failed = sum(1 for row in results if not row["ok"])
    by_outcome = dict(progress.by_outcome)
    for item in batch_items(batch=batch):
        if item.state != "done":
            by_outcome[item.state] = by_outcome.get(item.state, 0) + 1
    return {
        "batch": batch.pk,
        "total": batch.total,
        "ok": progress.ok,
        "failed": failed,
        "by_outcome": by_outcome,
        "duration_ms": duration_ms,
        "results": results,
    }
