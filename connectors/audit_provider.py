"""The connectors app's answers to what the audit log needs to know (see audit.providers).

Registered by `ConnectorsConfig.ready()`, so the audit app never imports connectors.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from audit.providers import Redaction
from connectors.explain import ConsoleOutcome, outcome_label
from connectors.models import ALL_SECRET_FIELDS, Connector
from connectors.oauth_http import CLIENT_AUTH_LABELS, OUTCOMES, redaction


class ConnectorsAuditProvider:
    """Connector facts for audit: secret field names and values (to mask), names, outcomes."""

    @property
    def redaction(self) -> Redaction:
        return redaction

    def secret_field_names(self) -> frozenset[str]:
        return frozenset(ALL_SECRET_FIELDS)

    def field_names(self) -> frozenset[str]:
        return frozenset(field.name for field in Connector._meta.concrete_fields)

    def sensitive_param_values(self, connector: Any) -> list[str]:
        return [p.value for p in connector.params.all() if p.sensitive and p.value]

    def connector_by_id(self, connector_id: int) -> Connector | None:
        return Connector.objects.filter(pk=connector_id).first()

    def connector_choices(self) -> list[tuple[int, str]]:
        # Only names and ids: listing connectors must never decrypt their secrets.
        return list(Connector.objects.order_by("name").values_list("pk", "name"))

    def connector_names_matching(self, text: str, *, limit: int) -> list[str]:
        # Names only, for the audit log's type-ahead: no connector is loaded (or decrypted).
        names = Connector.objects.order_by("name").values_list("name", flat=True)
        by_prefix = list(names.filter(name__istartswith=text)[:limit])
        if len(by_prefix) >= limit:
            return by_prefix
        others = names.filter(name__icontains=text).exclude(name__istartswith=text)
        return [*by_prefix, *others[: limit - len(by_prefix)]]

    def outcome_codes(self) -> tuple[str, ...]:
        # The core's outcomes, then the Authorization Code connection's own.
        return (*OUTCOMES, ConsoleOutcome.RECONNECT_NEEDED, ConsoleOutcome.NOT_CONNECTED)

    def outcome_label(self, code: str) -> str:
        return outcome_label(code)

    def client_auth_labels(self) -> Mapping[str, str]:
        # The empty code (no client credentials sent) has no method name; audit says why.
        return {str(code): name for code, name in CLIENT_AUTH_LABELS.items() if code}
