"""The API's app: personal API tokens (knox's swappable token model) and the /api/ views."""

from __future__ import annotations

from django.apps import AppConfig


class ApiConfig(AppConfig):
    name = "connectors.api"
    label = "api"
    verbose_name = "API"
    default_auto_field = "django.db.models.BigAutoField"
