"""Audit-specific use of the redaction rules: what may be stored, shown or exported.

No redaction rules live here; every mask comes from the rules the connectors app hands over
(`audit.providers`). This module only decides what to feed them (the connector's own secret
values, the diff shape of change records).

It also makes values storable (`storable_text`, `storable_json`, `storable_row`): whatever a
remote server sent, every database takes it and gives back exactly what was written, so a hash
of the written values matches the rows as read back.
"""

from __future__ import annotations

import decimal
import functools
import json
import logging
import math
from collections.abc import Iterable
from typing import Any

from django.core.serializers.json import DjangoJSONEncoder
from django.db import models

from audit import providers
from audit.providers import Redaction

logger = logging.getLogger("audit")


def _rules() -> Redaction:
    return providers.get().redaction


# The only values a secret field's diff entry may carry.
SECRET_STATES: frozenset[Any] = frozenset({None, "", "set", "changed", "cleared", "not set"})


class Secrets:
    """Secret values to mask, opaque to templates, repr and logs (they only feed redaction)."""

    __slots__ = ("_values",)

    def __init__(self, values: Iterable[str] = ()) -> None:
        self._values: tuple[str, ...] = tuple(sorted({v for v in values if v}, key=len))[::-1]

    def __repr__(self) -> str:
        return f"<Secrets: {len(self._values)} values>"

    __str__ = __repr__

    def __bool__(self) -> bool:
        return bool(self._values)

    def __add__(self, other: Secrets) -> Secrets:
        return Secrets((*self._values, *other._values))

    def text(self, value: Any) -> str:
        if value is None:
            return ""
        return _rules().redact_text(str(value), secrets=self._values)

    def json(self, value: Any) -> Any:
        redacted = _rules().redact_json(
            value, secrets=self._values, harmless_keys=_harmless_record_keys()
        )
        return _keep_states(value, redacted)


NO_SECRETS = Secrets()


def _keep_states(original: Any, redacted: Any) -> Any:
    """Undo masks that hid only a state ("set", "not set", True...) under a secret-looking key.

    redact_json masks every value of a key like "client_secret" or "include_secrets"; when the
    stored value is one of these markers there is nothing secret to hide, and the marker is
    exactly what an auditor needs to read.
    """
    if isinstance(original, dict) and isinstance(redacted, dict):
        return {k: _keep_states(original.get(k), v) for k, v in redacted.items()}
    if isinstance(original, list | tuple) and isinstance(redacted, list):
        return [_keep_states(o, r) for o, r in zip(original, redacted, strict=False)]
    if redacted == _rules().MASK and (
        isinstance(original, bool) or (isinstance(original, str) and original in SECRET_STATES)
    ):
        return original
    return redacted


def _secret_field_names() -> frozenset[str]:
    return providers.get().secret_field_names()


@functools.cache
def _harmless_record_keys() -> frozenset[str]:
    """Names in our own records that look secret but are not: the connector's non-secret
    fields (Header Auth Key, Json Access Token Key...) and a key/value row's "key"."""
    return frozenset((providers.get().field_names() - _secret_field_names()) | {"key"})


def connector_secrets(connector: Any) -> Secrets:
    """Every stored secret of a connector (fields and sensitive params), for masking only."""
    if connector is None:
        return NO_SECRETS
    values: list[str] = []
    for name in _secret_field_names():
        try:
            value = getattr(connector, name, "")
        except Exception as exc:  # an unreadable secret cannot leak either; say so and go on
            logger.warning(
                "Cannot read %s of connector %s for masking: %s",
                name,
                connector.pk,
                type(exc).__name__,
            )
            continue
        if isinstance(value, str) and value:
            values.append(value)
    if getattr(connector, "pk", None) is not None:
        try:
            values.extend(providers.get().sensitive_param_values(connector))
        except Exception as exc:  # as above
            logger.warning(
                "Cannot read the params of connector %s for masking: %s",
                connector.pk,
                type(exc).__name__,
            )
    return Secrets(values)


def connector_secrets_by_id(connector_id: int | None) -> Secrets:
    """The secrets of a connector that still exists (deleted ones have nothing left to leak)."""
    if connector_id is None:
        return NO_SECRETS
    try:
        connector = providers.get().connector_by_id(connector_id)
    except Exception as exc:  # e.g. an undecryptable secret: mask with the generic rules
        logger.warning("Cannot read connector %s for masking: %s", connector_id, type(exc).__name__)
        return NO_SECRETS
    return connector_secrets(connector)


def as_plain_json(value: Any) -> Any:
    """The value exactly as the JSON column will give it back (so the stored hash matches)."""
    return json.loads(json.dumps(value, cls=DjangoJSONEncoder))


def _field_is_secret(field: Any, secret_fields: frozenset[str]) -> bool:
    if not isinstance(field, str):
        return False
    if field in secret_fields or field in _harmless_record_keys():
        return field in secret_fields  # our own field: we know exactly which are secret
    return _rules().key_looks_sensitive(field)


def details_redact(details: Any, *, secrets: Secrets = NO_SECRETS) -> Any:
    """Details safe to store, show or export: secret diff entries reduced to their state."""
    plain = as_plain_json(details if details is not None else {})
    if isinstance(plain, dict) and isinstance(plain.get("changes"), list):
        secret_fields = _secret_field_names()
        for change in plain["changes"]:
            if isinstance(change, dict) and _field_is_secret(change.get("field"), secret_fields):
                for side in ("before", "after"):
                    if change.get(side) not in SECRET_STATES:
                        change[side] = _rules().MASK
    return as_plain_json(secrets.json(plain))


def headers_redact(pairs: Any, *, secrets: Secrets = NO_SECRETS) -> list[tuple[str, str]]:
    rows = [(str(k), str(v)) for k, v in _pairs(pairs)]
    return [(k, secrets.text(v)) for k, v in _rules().redact_headers(rows)]


def body_redact(pairs: Any, *, secrets: Secrets = NO_SECRETS) -> list[tuple[str, str]]:
    rows = [(str(k), str(v)) for k, v in _pairs(pairs)]
    return [(k, secrets.text(v)) for k, v in _rules().redact_pairs(rows)]


def url_redact(url: str, *, secrets: Secrets = NO_SECRETS) -> str:
    return secrets.text(_rules().redact_url(url or ""))


def _pairs(value: Any) -> list[tuple[Any, Any]]:
    if isinstance(value, dict):
        return list(value.items())
    rows = []
    for item in value or ():
        if isinstance(item, list | tuple) and len(item) == 2:
            rows.append((item[0], item[1]))
        elif isinstance(item, dict) and "key" in item:
            rows.append((item["key"], item.get("value", "")))
    return rows


# --- storable values ------------------------------------------------------------------------

REPLACEMENT = "\ufffd"
# Python prints floats from this size on with an exponent; jsonb keeps them as exact numerics
# and gives them back as integers, so they are stored as those integers in the first place.
_EXPONENT_FLOATS = 1e16


def storable_text(value: str, *, max_length: int | None = None) -> str:
    """Text every database stores as given: NUL and lone surrogates become U+FFFD.

    PostgreSQL refuses NUL in text and in jsonb, and no database can encode a lone surrogate
    (which a JSON "\\ud800" escape produces). They are replaced, not dropped: dropping could
    join the pieces of a secret that a server echoed with NULs in between. `max_length` cuts
    to a column's size (PostgreSQL refuses longer values, SQLite would keep them).
    """
    if "\x00" in value:
        value = value.replace("\x00", REPLACEMENT)
    if not value.isascii():
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            # Pairs of surrogates become their character; lone ones become U+FFFD.
            value = value.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "replace")
    if max_length is not None and len(value) > max_length:
        value = value[:max_length]
    return value


def _storable_float(value: float) -> float | int | str:
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "Infinity" if value > 0 else "-Infinity"
    if value == 0:
        return 0.0  # jsonb has no negative zero
    if abs(value) >= _EXPONENT_FLOATS:
        return int(decimal.Decimal(repr(value)))
    return value


def _storable_key(key: Any) -> str:
    """A dict key as JSON writes it (true, null, 1.5...), made storable."""
    if not isinstance(key, str):
        key = json.dumps(key)  # what a JSON column makes of a number, bool or None key
    return storable_text(key)


def storable_json(value: Any) -> Any:
    """A JSON value every JSON column stores and gives back unchanged, at any depth.

    Strings and keys as in `storable_text`; NaN and infinities (which strict JSON and jsonb
    refuse) become the strings "NaN", "Infinity", "-Infinity"; -0.0 becomes 0.0 and floats of
    1e16 and more the integers jsonb would give back; tuples become lists and keys strings, as
    any JSON column does; dates, decimals and UUIDs become text as Django's encoder writes them.
    """
    if isinstance(value, str):
        return storable_text(value)
    if value is None or isinstance(value, bool | int):
        return value
    if isinstance(value, float):
        return _storable_float(value)
    if isinstance(value, dict):
        return {_storable_key(key): storable_json(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [storable_json(item) for item in value]
    return storable_json(as_plain_json(value))


@functools.cache
def _storable_fields(model: type[models.Model]) -> tuple[tuple[str, bool, int | None], ...]:
    """(attribute, is JSON, max length) of every text and JSON column of a model."""
    fields: list[tuple[str, bool, int | None]] = []
    for field in model._meta.concrete_fields:
        if isinstance(field, models.JSONField):
            fields.append((field.attname, True, None))
        elif isinstance(field, models.CharField | models.TextField):
            fields.append((field.attname, False, field.max_length))
    return tuple(fields)


def storable_row(instance: models.Model) -> None:
    """Make every text and JSON column of an unsaved row storable, in place."""
    for attname, is_json, max_length in _storable_fields(type(instance)):
        value = getattr(instance, attname)
        if is_json:
            setattr(instance, attname, storable_json(value))
        elif isinstance(value, str):
            setattr(instance, attname, storable_text(value, max_length=max_length))
