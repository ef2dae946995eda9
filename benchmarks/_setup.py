"""Shared set-up for the benchmark scripts: Django on a fresh database of their own."""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def django_on_fresh_database(label: str) -> str:
    """Point Django at a new SQLite file (or BENCH_DATABASE_URL), migrate, return the URL."""
    sys.path.insert(0, str(ROOT))
    url = os.environ.get("BENCH_DATABASE_URL")
    if not url:
        folder = Path(tempfile.mkdtemp(prefix=f"cc-bench-{label}-"))
        url = f"sqlite:///{folder / 'bench.sqlite3'}"
    os.environ["DATABASE_URL"] = url
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    os.environ.setdefault("DJANGO_SECRET_KEY", "benchmark-only-secret-key-0123456789abcdefghijkl")
    os.environ.setdefault("FIELD_ENCRYPTION_KEY", "8C5F7G1sZk1I0mE7b3oQh0lC2m3yWb2kV4l0T4n5sQ0=")
    # Benchmarks run keyed, as production must (a bench-only key).
    os.environ.setdefault("AUDIT_CHAIN_KEY", "YmVuY2gtb25seS1hdWRpdC1jaGFpbi1rZXktMzItYnl0ZXMhIQ==")
    os.environ.setdefault("DJANGO_SECURE_SSL_REDIRECT", "0")
    os.environ.setdefault("DJANGO_ALLOWED_HOSTS", "testserver")
    os.environ.setdefault("DJANGO_LOG_LEVEL", "WARNING")
    # Production static storage, as a real deployment runs it after collectstatic.
    os.environ.setdefault("DJANGO_STATIC_ROOT", tempfile.mkdtemp(prefix="cc-bench-static-"))
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0, interactive=False)
    call_command("collectstatic", verbosity=0, interactive=False)
    return url
