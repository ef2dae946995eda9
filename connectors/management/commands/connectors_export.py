"""python manage.py connectors_export [--include-secrets]: every connector as JSON on stdout."""

from __future__ import annotations

import json

from django.core.management.base import BaseCommand

from connectors.transfer import connectors_export


class Command(BaseCommand):
    help = "Write every connector as JSON to standard output. Secrets are left empty unless asked."

    def add_arguments(self, parser) -> None:
        parser.add_argument(
            "--include-secrets",
            action="store_true",
            help="Write secrets in plain text (for moving connectors to another installation).",
        )

    def handle(self, *args, include_secrets: bool, **options) -> None:
        payload = connectors_export(include_secrets=include_secrets, user=None)
        self.stdout.write(json.dumps(payload, indent=2, ensure_ascii=False))
