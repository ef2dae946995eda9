from __future__ import annotations

from django.apps import AppConfig


class ConnectorsConfig(AppConfig):
    name = "connectors"
    verbose_name = "Connectors"

    def ready(self) -> None:
        from audit import providers
        from connectors import checks  # noqa: F401  (registers system checks)
        from connectors.audit_provider import ConnectorsAuditProvider

        # The audit log learns about connectors through this, never by importing them.
        providers.register(ConnectorsAuditProvider())
