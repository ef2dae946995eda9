"""Retention: remove the oldest stretch of the audit log, recording that it was removed."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone

from audit.pruning import audit_prune
from audit.services import AuditWriteError


class Command(BaseCommand):
    help = (
        "Remove audit records (and their test runs and attempts) older than DAYS, from the start "
        "of the chain. The removal is itself recorded, and audit_verify stays valid."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--older-than", type=int, required=True, metavar="DAYS")

    def handle(self, *args: Any, older_than: int, **options: Any) -> None:
        if older_than < 1:
            raise CommandError("--older-than must be at least 1 day.")
        cutoff = timezone.now() - dt.timedelta(days=older_than)
        try:
            result = audit_prune(cutoff=cutoff)
        except AuditWriteError as exc:
            raise CommandError(str(exc)) from None
        if not result.count:
            self.stdout.write(f"Nothing older than {older_than} days to remove.")
            return
        record_pk = result.record.pk if result.record is not None else "?"
        self.stdout.write(
            self.style.SUCCESS(
                f"Removed {result.count} audit records #{result.first_id}-#{result.last_id} "
                f"({result.test_runs} test runs, {result.attempts} attempts); the chain now "
                f"starts after hash {result.end_hash}. Recorded as #{record_pk}."
            )
        )
