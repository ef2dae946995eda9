"""Personal API tokens: knox's token (only a hash is stored) with a name and a last-used time."""

from __future__ import annotations

from typing import Any

from django.db import models
from knox.models import AbstractAuthToken


class ApiToken(AbstractAuthToken):
    """One personal token. The token itself is shown once; the database keeps its SHA-512."""

    # Annotated: knox's base class is untyped, so the plugin cannot infer these.
    name: models.CharField[str, str] = models.CharField(max_length=100, blank=True)
    last_used_at: models.DateTimeField[Any, Any] = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = "API token"
        ordering = ["-created"]

    def __str__(self) -> str:
        # Never the digest: __str__ ends up in logs and admin messages.
        return f"{self.name or 'API token'} ({self.token_key[:6]}…)"

    def __repr__(self) -> str:
        return f"<ApiToken {self.name!r} of user #{self.user_id}>"
