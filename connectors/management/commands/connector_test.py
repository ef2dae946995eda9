"""python manage.py connector_test NAME [--json]: run and record a connection test."""

from __future__ import annotations

import json
import sys
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from audit.models import TestRun
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


def summary_dict(run: TestRun) -> dict[str, Any]:
    """The documented JSON shape of a test run."""
    token = run.token or None
    return {
        "connector": run.connector_name,
        "ok": run.ok,
        "outcome": run.outcome,
        "message": run.message,
        "client_authentication_used": run.client_authentication_used or None,
        "attempts": [
            {
                "client_authentication": a.client_authentication,
                "status_code": a.status_code,
                "outcome": a.outcome,
                "message": a.message,
                "duration_ms": a.duration_ms,
            }
            for a in run.attempts.all()
        ],
        "token": (
            {
                "token_type": token.get("token_type"),
                "expires_in": token.get("expires_in"),
                "scope": token.get("scope"),
                "refresh_token_issued": token.get("refresh_token_issued"),
            }
            if token
            else None
        ),
    }
