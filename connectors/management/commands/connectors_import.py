"""python manage.py connectors_import FILE: upsert connectors from JSON, all or nothing."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from connectors.transfer import ImportFileError, connectors_import_text


class Command(BaseCommand):
    help = (
        "Create or update connectors from a JSON file (the connectors_export format). Every "
        "connector is checked first; on any error nothing changes and the errors are listed."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("file", help="Path to the JSON file, or - for standard input.")

    def handle(self, *args: Any, file: str, **options: Any) -> None:
        try:
            text = _read_stdin(options.get("stdin")) if file == "-" else Path(file).read_bytes()
        except OSError as exc:
            raise CommandError(f"Cannot read {file}: {exc.strerror}") from None
        try:
            result = connectors_import_text(text=text, user=None)
        except ImportFileError as exc:
            raise CommandError(str(exc)) from None
        if not result.ok:
            for error in result.errors:
                self.stderr.write(f"{error.connector}: {error.field}: {error.message}")
            raise CommandError(
                f"Nothing was imported: {len(result.errors)} problem(s) in the file."
            )
        self.stdout.write(
            self.style.SUCCESS(
                f"Imported: {len(result.created)} created, {len(result.updated)} updated, "
                f"{len(result.unchanged)} unchanged."
            )
        )


def _read_stdin(stream: Any) -> bytes | str:
    """Standard input as bytes when it is a real stream, so the JSON's own encoding decides."""
    stream = stream if stream is not None else sys.stdin
    buffer = getattr(stream, "buffer", None)
    return buffer.read() if buffer is not None else stream.read()
