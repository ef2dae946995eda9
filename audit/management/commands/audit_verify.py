"""Walk the audit hash chain and report the first record that does not match."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from audit.chain import chain_verify


class Command(BaseCommand):
    help = (
        "Check that the audit log is whole: every record (and each test run with its attempts) "
        "still matches its hash and follows the one before. Exits non-zero naming the first "
        "record that does not."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--chunk-size", type=int, default=2000, help="Records read at a time.")
        parser.add_argument("--progress", action="store_true", help="Print progress per chunk.")

    def handle(self, *args: Any, chunk_size: int, progress: bool, **options: Any) -> None:
        result = None
        for result in chain_verify(chunk_size=max(chunk_size, 1)):
            if result.ok and progress:
                self.stderr.write(f"… {result.checked} records verified (up to #{result.last_id})")
        if result is None:
            raise CommandError("AUDIT CHAIN BROKEN at record #None: verification did not run")
        if not result.ok:
            raise CommandError(f"AUDIT CHAIN BROKEN at record #{result.bad_id}: {result.problem}")
        if result.checked == 0:
            self.stdout.write("Audit log is empty: nothing to verify.")
            return
        self.stdout.write(
            self.style.SUCCESS(
                f"Audit chain intact: {result.checked} records verified "
                f"(#{result.first_id} to #{result.last_id})."
            )
        )
