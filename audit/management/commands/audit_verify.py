"""Walk the audit hash chain and report the first record that does not match."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from audit.chain import VerifyResult, chain_verify
from audit.checkpoints import CheckpointError, checkpoint_problem, checkpoint_read

MAX_WORKERS = 8


class Command(BaseCommand):
    help = (
        "Check that the audit log is whole: every record (and each test run with its attempts) "
        "still matches its hash and follows the one before. Exits non-zero naming the first "
        "record that does not. With --checkpoint FILE, also checks the log against the newest "
        "signed line in FILE (written by audit_checkpoint)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--chunk-size", type=int, default=2000, help="Records read at a time.")
        parser.add_argument("--progress", action="store_true", help="Print progress per chunk.")
        parser.add_argument(
            "--workers",
            type=int,
            default=0,
            help="Processes that check stretches of the log at once (PostgreSQL only; default: "
            f"one per CPU, at most {MAX_WORKERS}; 1 walks it in this process).",
        )
        parser.add_argument(
            "--checkpoint", metavar="FILE", default="", help="audit_checkpoint's output file."
        )

    def handle(
        self,
        *args: Any,
        chunk_size: int,
        progress: bool,
        checkpoint: str,
        workers: int,
        **options: Any,
    ) -> None:
        result: VerifyResult | None = None
        workers = workers if workers > 0 else min(os.cpu_count() or 1, MAX_WORKERS)
        for result in chain_verify(chunk_size=max(chunk_size, 1), workers=workers):
            if result.ok and progress:
                self.stderr.write(f"… {result.checked} records verified (up to #{result.last_id})")
        if result is None:
            raise CommandError("AUDIT CHAIN BROKEN at record #None: verification did not run")
        if not result.ok:
            raise CommandError(f"AUDIT CHAIN BROKEN at record #{result.bad_id}: {result.problem}")
        against = self._checkpoint(Path(checkpoint)) if checkpoint else ""
        if result.checked == 0:
            self.stdout.write(f"Audit log is empty: nothing to verify{against}.")
            return
        self.stdout.write(
            self.style.SUCCESS(
                f"Audit chain intact: {result.checked} records verified "
                f"(#{result.first_id} to #{result.last_id}){against}."
            )
        )

    def _checkpoint(self, path: Path) -> str:
        """Check the log against the newest checkpoint in the file; the wording for success."""
        try:
            saved = checkpoint_read(path)
        except CheckpointError as exc:
            raise CommandError(f"AUDIT CHECKPOINT UNUSABLE: {exc}") from None
        problem = checkpoint_problem(saved)
        if problem:
            raise CommandError(f"AUDIT LOG DOES NOT MATCH ITS CHECKPOINT: {problem}")
        return f", and it matches {saved.describe()}"
