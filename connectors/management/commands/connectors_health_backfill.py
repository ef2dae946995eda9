"""Rebuild every connector's health row from its recorded test runs (safe to run again)."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand
from django.db import transaction

from connectors.health import connector_health_backfill


class Command(BaseCommand):
    help = "Rebuild each connector's health (state, streak, last success) from its test runs."

    def handle(self, *args: Any, **options: Any) -> None:
        with transaction.atomic():
            count = connector_health_backfill()
        self.stdout.write(f"Health rebuilt for {count} tested connectors.")
