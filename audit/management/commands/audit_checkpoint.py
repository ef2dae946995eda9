"""Write a signed checkpoint of the audit log (time, count, head hash) for safekeeping."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from audit.checkpoints import CheckpointError, checkpoint_line, checkpoint_take


def _append_line(path: Path, line: str) -> None:
    # One write with O_APPEND: concurrent runs never interleave, and earlier lines stay as they
    # were. Created owner-only: the line reveals nothing secret, but nobody else should edit it.
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    try:
        os.write(fd, (line + "\n").encode("utf-8"))
    finally:
        os.close(fd)


class Command(BaseCommand):
    help = (
        "Write one signed line naming the audit log's size and newest hash, to stdout or "
        "appended to FILE. Keep it outside the database; audit_verify --checkpoint FILE then "
        "shows deleted, rolled-back, wiped or rewritten records."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--output", metavar="FILE", default="", help="Append to FILE.")

    def handle(self, *args: Any, output: str, **options: Any) -> None:
        try:
            line = checkpoint_line(checkpoint_take())
        except CheckpointError as exc:
            raise CommandError(str(exc)) from None
        if not output:
            self.stdout.write(line)
            return
        try:
            _append_line(Path(output), line)
        except OSError as exc:
            raise CommandError(f"Cannot append to {output}: {exc.strerror}.") from None
