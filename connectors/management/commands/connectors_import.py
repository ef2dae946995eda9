"""python manage.py connectors_import FILE [--passphrase-file FILE]: upsert connectors from JSON,
all or nothing. An encrypted export is opened with its passphrase (from the file, or typed)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

# Through the module, so a test can stand in for the terminal.
from connectors.management import passphrase as source
from connectors.transfer import (
    ImportFileError,
    ImportResult,
    PassphraseNeeded,
    connectors_import_text,
)
from connectors.transfer.entries import printable


class Command(BaseCommand):
    help = (
        "Create or update connectors from a JSON file (the connectors_export format). Every "
        "connector is checked first; on any error nothing changes and the errors are listed."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("file", help="Path to the JSON file, or - for standard input.")
        parser.add_argument(
            "--passphrase-file",
            metavar="FILE",
            help="For an encrypted export: the passphrase is the first line of FILE. Without "
            "it, the passphrase is asked at the terminal.",
        )

    def handle(
        self, *args: Any, file: str, passphrase_file: str | None = None, **options: Any
    ) -> None:
        try:
            text = _read_stdin(options.get("stdin")) if file == "-" else Path(file).read_bytes()
        except OSError as exc:
            raise CommandError(f"Cannot read {file}: {exc.strerror}") from None
        passphrase = source.passphrase_read(passphrase_file) if passphrase_file else None
        try:
            result = _import(text, passphrase, ask=file != "-" and source.terminal())
        except ImportFileError as exc:
            raise CommandError(str(exc)) from None
        if not result.ok:
            for error in result.errors:
                # A message may quote a value from the file: no control character reaches
                # the terminal.
                self.stderr.write(printable(str(error)))
            raise CommandError(
                f"Nothing was imported: {len(result.errors)} problem(s) in the file."
            )
        self.stdout.write(
            self.style.SUCCESS(
                f"Imported: {len(result.created)} created, {len(result.updated)} updated, "
                f"{len(result.unchanged)} unchanged."
            )
        )


def _import(text: bytes | str, passphrase: str | None, *, ask: bool) -> ImportResult:
    """Import; an encrypted file without a passphrase asks for one when someone can answer."""
    try:
        return connectors_import_text(text=text, user=None, passphrase=passphrase)
    except PassphraseNeeded as exc:
        if passphrase is not None or not ask:
            raise PassphraseNeeded(
                f"{exc} Give --passphrase-file FILE, or run the command in a terminal to type it."
            ) from None
    return connectors_import_text(
        text=text, user=None, passphrase=source.passphrase_prompt(confirm=False)
    )


def _read_stdin(stream: Any) -> bytes | str:
    """Standard input as bytes when it is a real stream, so the JSON's own encoding decides."""
    stream = stream if stream is not None else sys.stdin
    buffer = getattr(stream, "buffer", None)
    return buffer.read() if buffer is not None else stream.read()
