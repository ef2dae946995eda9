"""Audit-specific use of the redaction rules: what may be stored, shown or exported.

No redaction rules live here; every mask comes from the rules the connectors app hands over
(`audit.providers`). This module only decides what to feed them (the connector's own secret
values, the diff shape of change records).
"""

from __future__ import annotations

import functools
import json
import logging
from collections.abc import Iterable
from typing import Any

from django.core.serializers.json import DjangoJSONEncoder

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
