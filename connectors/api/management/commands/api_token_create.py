"""manage.py api_token_create USERNAME [--name TEXT] [--expires-days N]: print a token once."""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError, CommandParser

from connectors.api.tokens import MAX_EXPIRY_DAYS, api_token_create


class Command(BaseCommand):
    help = (
        "Create a personal API token for USERNAME and print it once (only its hash is stored). "
        "The token acts with that user's roles. The creation is recorded in the audit log."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("username")
        parser.add_argument("--name", default="", help="What uses the token, e.g. deploy-bot.")
        parser.add_argument(
            "--expires-days",
            type=int,
            default=90,
            help=f"Days until it expires (1 to {MAX_EXPIRY_DAYS}; default 90).",
        )

    def handle(
        self, *args: Any, username: str, name: str, expires_days: int, **options: Any
    ) -> None:
        if not 1 <= expires_days <= MAX_EXPIRY_DAYS:
            raise CommandError(f"--expires-days must be 1 to {MAX_EXPIRY_DAYS}.", returncode=2)
        user = (
            get_user_model().objects.filter(**{get_user_model().USERNAME_FIELD: username}).first()
        )
        if user is None or not user.is_active:
            raise CommandError(f"No active user named {username!r}.", returncode=2)
        token = api_token_create(user=user, name=name[:100], expires_days=expires_days)
        self.stdout.write(token)
