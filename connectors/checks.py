"""System checks that catch a wrong encryption key before a page does."""

from __future__ import annotations

from typing import Any

from django.core.checks import CheckMessage, Error, register
from django.db import DatabaseError


@register("connectors")
def encryption_key_reads_stored_secrets(app_configs: Any, **kwargs: Any) -> list[CheckMessage]:
    from connectors.fields import SecretDecryptionError
    from connectors.models import ALL_SECRET_FIELDS, Connector

    try:
        sample = Connector.objects.only("pk", *ALL_SECRET_FIELDS).order_by("-pk").first()
    except SecretDecryptionError as exc:
        return [Error(str(exc), id="connectors.E001")]
    except DatabaseError:
        return []  # not migrated yet: nothing stored to read
    del sample
    return []
