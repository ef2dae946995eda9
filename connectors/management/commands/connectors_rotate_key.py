"""python manage.py connectors_rotate_key: re-encrypt every secret under the newest key."""

from __future__ import annotations

from django.core.management.base import BaseCommand

from connectors.services import connector_rotate_key


class Command(BaseCommand):
    help = (
        "Re-encrypt every stored secret under the first key of FIELD_ENCRYPTION_KEY. Run it "
        "with FIELD_ENCRYPTION_KEY=NEW,OLD; afterwards NEW alone reads everything."
    )

    def handle(self, *args, **options) -> None:
        touched = connector_rotate_key(user=None)
        self.stdout.write(self.style.SUCCESS(f"Re-encrypted {touched} rows under the newest key."))
