"""python manage.py connectors_check_secrets: can FIELD_ENCRYPTION_KEY read every stored secret?"""

from __future__ import annotations

import time
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from connectors.checks import CHUNK_SIZE, stored_secrets_unreadable


class Command(BaseCommand):
    help = (
        "Decrypt every stored secret (connector fields and token request rows) with "
        "FIELD_ENCRYPTION_KEY, a chunk at a time, and list those it cannot read, by connector "
        "and field, never by value. Exit 0 when all are readable, 1 otherwise."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument(
            "--chunk-size",
            type=int,
            default=CHUNK_SIZE,
            help=f"Rows read per database round trip (default {CHUNK_SIZE}).",
        )

    def handle(self, *args: Any, chunk_size: int, **options: Any) -> None:
        if chunk_size < 1:
            raise CommandError("--chunk-size must be at least 1.", returncode=2)
        started = time.monotonic()
        unreadable = 0
        for secret in stored_secrets_unreadable(chunk_size=chunk_size):
            unreadable += 1
            self.stdout.write(f"{secret.connector}: {secret.field} cannot be decrypted")
        seconds = time.monotonic() - started
        if unreadable:
            raise CommandError(
                f"{unreadable} stored secret(s) cannot be decrypted with FIELD_ENCRYPTION_KEY "
                f"({seconds:.1f} s). Put the key that encrypted them back, after the new one "
                "(FIELD_ENCRYPTION_KEY=NEW,OLD), then run 'python manage.py "
                "connectors_rotate_key'.",
                returncode=1,
            )
        self.stdout.write(
            self.style.SUCCESS(
                f"Every stored secret can be decrypted with FIELD_ENCRYPTION_KEY ({seconds:.1f} s)."
            )
        )
