"""python manage.py connector_test NAME [--json]: run and record a connection test."""

from __future__ import annotations

import json
import sys
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from audit.models import TestRun
from audit.run_summary import testrun_summary
from connectors.connection_test import connector_test
from connectors.models import Connector
from connectors.rules import TestRefused


class Command(BaseCommand):
    help = (
        "Run the connection test of a connector and record it like the UI does. Exit 0 on "
        "success, 1 on a failed test, 2 on bad usage, an unknown connector or a refused test "
        "(a disabled connector)."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("name", help="The connector's name.")
        parser.add_argument(
            "--json", action="store_true", dest="as_json", help="Print one JSON object."
        )

    def handle(self, *args: Any, name: str, as_json: bool, **options: Any) -> None:
        connector = Connector.objects.filter(name=name).first()
        if connector is None:
            raise CommandError(f"No connector named {name!r}.", returncode=2)
        try:
            outcome = connector_test(connector=connector, user=None, source=TestRun.Source.CLI)
        except TestRefused as exc:  # recorded as a refusal by connector_test
            raise CommandError(str(exc), returncode=2) from None
        run = outcome.run
        if as_json:
            self.stdout.write(json.dumps(summary_dict(run), ensure_ascii=False))
        else:
            self.stdout.write(f"{run.connector_name}: {run.outcome} ({run.duration_ms} ms)")
            self.stdout.write(run.message)
            if run.hint:
                self.stdout.write(f"Next step: {run.hint}")
            for attempt in run.attempts.all():
                self.stdout.write(
                    f"  {attempt.position}. {attempt.client_authentication or attempt.step}: "
                    f"{attempt.status_code or '-'} {attempt.outcome} ({attempt.duration_ms} ms)"
                )
        if not run.ok:
            sys.exit(1)


# The builder is shared with the API (POST /api/v1/connectors/{name}/test/).
summary_dict = testrun_summary
