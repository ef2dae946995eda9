"""Stream audit records to stdout as CSV or JSON (redacted, as on the page)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from audit.exports import FORMATS, export_stream
from audit.selectors import AuditFilters, audit_events_filtered


def _date(value: str) -> dt.date:
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise CommandError(f"--since takes a date like 2025-01-31, not {value!r}.") from None


class Command(BaseCommand):
    help = "Write audit records, newest first, to stdout as CSV or JSON, without secrets."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--format", choices=FORMATS, default="csv")
        parser.add_argument("--connector", metavar="NAME", default="", help="Exact connector name.")
        parser.add_argument("--since", metavar="DATE", type=_date, default=None)
        parser.add_argument("--kind", default="", help="test_run, change, denial or system.")

    def handle(self, *args: Any, **options: Any) -> None:
        qs = audit_events_filtered(AuditFilters(kind=options["kind"], since=options["since"]))
        if options["connector"]:
            qs = qs.filter(connector_name=options["connector"])
        for chunk in export_stream(qs, options["format"]):
            self.stdout.write(chunk, ending="")
