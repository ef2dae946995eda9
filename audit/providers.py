"""What the audit app needs to know about connectors, handed to it at start-up.

The audit log masks a connector's own secrets and offers connectors and outcomes in its filter
form, but it must not import the connectors app (the dependency runs one way: connectors writes
audit records). The connectors app registers an object that satisfies `ConnectorDirectory` in
its `AppConfig.ready()`; audit asks `get()` for it when it needs one.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from typing import Any, Protocol

from django.core.exceptions import ImproperlyConfigured


class Redaction(Protocol):
    """The Django-free masking rules (headers, form pairs, URLs, JSON, free text)."""

    @property
    def MASK(self) -> str: ...  # noqa: N802  (the module constant it stands for)

    def key_looks_sensitive(self, key: str, /) -> bool: ...

    def redact_text(self, text: str, /, *, secrets: Iterable[str]) -> str: ...

    def redact_url(self, url: str, /) -> str: ...

    def redact_headers(
        self, headers: Iterable[tuple[str, str]], /, *, sensitive_keys: Collection[str] = ()
    ) -> tuple[tuple[str, str], ...]: ...

    def redact_pairs(
        self, pairs: Iterable[tuple[str, str]], /, *, sensitive_keys: Collection[str] = ()
    ) -> tuple[tuple[str, str], ...]: ...

    def redact_json(
        self,
        value: Any,
        /,
        *,
        secrets: Iterable[str] = (),
        sensitive_keys: Collection[str] = (),
        harmless_keys: Collection[str] = (),
    ) -> Any: ...


class ConnectorDirectory(Protocol):
    """Connector facts the audit log reads; never a secret except to mask it."""

    @property
    def redaction(self) -> Redaction:
        """The masking rules every stored, shown or exported value passes through."""
        ...

    def secret_field_names(self) -> frozenset[str]:
        """Names of a connector's fields that hold secrets."""
        ...

    def field_names(self) -> frozenset[str]:
        """Names of all of a connector's stored fields (secret or not)."""
        ...

    def sensitive_param_values(self, connector: Any) -> list[str]:
        """Values of a saved connector's sensitive key/value rows (may raise if unreadable)."""
        ...

    def connector_by_id(self, connector_id: int) -> Any | None:
        """The connector with this id, or None when it was deleted (may raise if unreadable)."""
        ...

    def connector_choices(self) -> list[tuple[int, str]]:
        """(id, name) of every connector by name, without reading (decrypting) any secret."""
        ...

    def connector_names_matching(self, text: str, *, limit: int) -> list[str]:
        """Up to `limit` connector names starting with `text`, then containing it (any case)."""
        ...

    def outcome_codes(self) -> tuple[str, ...]:
        """The outcomes a connection test can end with, in the vocabulary's order."""
        ...

    def client_auth_labels(self) -> Mapping[str, str]:
        """The one name of each client authentication method, by the code an attempt stores."""
        ...

    def outcome_label(self, code: str) -> str:
        """The readable name of an outcome code ("Client rejected"); never just the code."""
        ...


_provider: ConnectorDirectory | None = None


def register(provider: ConnectorDirectory) -> None:
    """Install the provider (the connectors app calls this once, from `ready()`)."""
    global _provider
    _provider = provider


def get() -> ConnectorDirectory:
    """The registered provider; refusing loudly beats auditing without masking."""
    if _provider is None:
        raise ImproperlyConfigured(
            "No connector directory is registered for the audit log: the 'connectors' app "
            "must be in INSTALLED_APPS (it registers one when it starts)."
        )
    return _provider
