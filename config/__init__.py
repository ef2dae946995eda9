"""Project package; loading the Celery app here binds every @shared_task to it in any process."""

from __future__ import annotations

from config.celery import app as celery_app

__all__ = ("celery_app",)
