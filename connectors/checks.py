"""Reading stored secrets with the configured key: a cheap system check, and a full scan.

`manage.py check` runs on every management command, so its check reads only the newest
connector and the newest token request row. `stored_secrets_unreadable` reads every stored
secret, a chunk at a time (bounded memory, only the secret columns); the command
`connectors_check_secrets` runs it and lists what the key cannot read.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import cryptography.fernet
from django.core.checks import CheckMessage, Error, register
from django.db import DatabaseError
from django.db.models import TextField
from django.db.models.functions import Cast
from encrypted_model_fields import fields as encrypted

CHUNK_SIZE = 2000


@register("connectors")
def encryption_key_reads_stored_secrets(app_configs: Any, **kwargs: Any) -> list[CheckMessage]:
    from connectors.fields import SecretDecryptionError
    from connectors.models import ALL_SECRET_FIELDS, Connector, JwksKey, TokenRequestParam

    try:
        Connector.objects.only("pk", *ALL_SECRET_FIELDS).order_by("-pk").first()
        TokenRequestParam.objects.only("pk", "value").order_by("-pk").first()
        JwksKey.objects.only("pk", "private_key_pem").order_by("-pk").first()
    except SecretDecryptionError as exc:
        return [
            Error(
                str(exc),
                hint="'python manage.py connectors_check_secrets' lists every stored secret "
                "the key cannot read.",
                id="connectors.E001",
            )
        ]
    except DatabaseError:
        return []  # not migrated yet: nothing stored to read
    return []


@dataclass(frozen=True)
class UnreadableSecret:
    """Where a stored secret is that the configured key cannot decrypt (never its value)."""

    connector: str
    field: str


def _readable(ciphertext: str | None) -> bool:
    if not ciphertext:
        return True
    try:
        encrypted.decrypt_str(ciphertext)
    except cryptography.fernet.InvalidToken:
        return False
    return True


def _raw(names: tuple[str, ...]) -> dict[str, Cast]:
    # Cast to plain text, so the encrypted field's converter does not decrypt (and raise on the
    # first failure): each value is tried here, and every failure is listed.
    return {f"raw_{name}": Cast(name, output_field=TextField()) for name in names}


def stored_secrets_unreadable(*, chunk_size: int = CHUNK_SIZE) -> Iterator[UnreadableSecret]:
    """Every stored secret the configured FIELD_ENCRYPTION_KEY cannot decrypt, in id order.

    Memory stays bounded by `chunk_size` rows of the secret columns, whatever the inventory's size.
    """
    from connectors.models import ALL_SECRET_FIELDS, Connector, JwksKey, TokenRequestParam

    raw = _raw(ALL_SECRET_FIELDS)
    connectors = (
        Connector.objects.annotate(**raw).order_by("pk").values_list("name", *raw)
    ).iterator(chunk_size=chunk_size)
    for name, *values in connectors:
        for field, value in zip(ALL_SECRET_FIELDS, values, strict=True):
            if not _readable(value):
                yield UnreadableSecret(connector=name, field=field)
    rows = (
        TokenRequestParam.objects.annotate(raw_value=Cast("value", output_field=TextField()))
        .order_by("pk")
        .values_list("connector__name", "kind", "key", "raw_value")
    ).iterator(chunk_size=chunk_size)
    for name, kind, key, value in rows:
        if not _readable(value):
            yield UnreadableSecret(connector=name, field=f"{kind} row {key}")
    # Jwks Auth's console-wide signing keys belong to no connector.
    keys = (
        JwksKey.objects.annotate(raw_value=Cast("private_key_pem", output_field=TextField()))
        .order_by("pk")
        .values_list("kid", "raw_value")
    ).iterator(chunk_size=chunk_size)
    for kid, value in keys:
        if not _readable(value):
            yield UnreadableSecret(connector="(console)", field=f"JWKS key {kid}")
