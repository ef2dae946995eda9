"""Encrypted model fields that refuse to pass ciphertext off as a value."""

from __future__ import annotations

from typing import Any

import cryptography.fernet
from django.core.exceptions import ImproperlyConfigured
from django.db import models
from encrypted_model_fields import fields as encrypted


class SecretDecryptionError(ImproperlyConfigured):
    """A stored secret cannot be read with the configured FIELD_ENCRYPTION_KEY."""

    def __init__(self, field_name: str = "") -> None:
        where = f" ({field_name})" if field_name else ""
        super().__init__(
            f"A stored secret{where} cannot be decrypted with FIELD_ENCRYPTION_KEY. The key is "
            "wrong or the key that encrypted it was removed. Put the previous key back, after "
            "the new one (FIELD_ENCRYPTION_KEY=NEW,OLD), then run "
            "'python manage.py connectors_rotate_key'."
        )


class _StrictDecryptMixin:
    """The library returns the ciphertext unchanged under a wrong key; raise instead.

    Only values read from the database are certain to be ciphertext, so `to_python` (used by
    form and model validation on plaintext) keeps the library's lenient behaviour.
    """

    # Set on the field by Django; declared for the type checker, which sees only the mixin.
    model: type[models.Model]
    name: str

    def from_db_value(self, value: Any, expression: Any, connection: Any) -> Any:
        if value is None or value == "":
            return value
        try:
            return encrypted.decrypt_str(value)
        except cryptography.fernet.InvalidToken:
            raise SecretDecryptionError(f"{self.model.__name__}.{self.name}") from None


class SecretCharField(_StrictDecryptMixin, encrypted.EncryptedCharField):
    pass


class SecretTextField(_StrictDecryptMixin, encrypted.EncryptedTextField):
    pass
