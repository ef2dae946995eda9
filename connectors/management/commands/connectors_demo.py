"""python manage.py connectors_demo: the demo superuser and connectors (safe to run again)."""

from __future__ import annotations

import os

from django.core.management.base import BaseCommand

from connectors.demo import (
    demo_connectors_ensure,
    demo_connectors_follow,
    demo_superuser_ensure,
)


class Command(BaseCommand):
    help = "Create the demo superuser and one demo connector per Auth Config, once."

    def add_arguments(self, parser) -> None:
        parser.add_argument(
            "--base-url",
            default="http://127.0.0.1:8000",
            help="Where this app is served, for the sandbox URLs.",
        )

    def handle(self, *args, base_url: str, **options) -> None:
        demo = demo_superuser_ensure(
            username=os.environ.get("DJANGO_SUPERUSER_USERNAME") or "admin",
            password=os.environ.get("DJANGO_SUPERUSER_PASSWORD") or None,
        )
        from django.contrib.auth import get_user_model

        user = get_user_model().objects.get(username=demo.username)
        created = demo_connectors_ensure(base_url=base_url, user=user)
        self.stdout.write(f"Demo connectors created: {', '.join(created) or 'none (all exist)'}")
        # Served on another port than last time: the demo connectors follow it.
        move = demo_connectors_follow(base_url=base_url, user=user)
        if move.moved:
            self.stdout.write(f"Demo connectors now use {base_url}: {', '.join(move.moved)}")
        for name, reason in move.left:
            self.stdout.write(
                self.style.WARNING(f"Demo connector {name} still uses its old address: {reason}")
            )
        password = demo.password or "(unchanged; set DJANGO_SUPERUSER_PASSWORD to reset it)"
        self.stdout.write(
            self.style.SUCCESS(f"Log in at {base_url}/ as {demo.username} / {password}")
        )
