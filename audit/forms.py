"""The audit list's filter form (GET), shared by the page and the export."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django import forms
from django.contrib.auth import get_user_model
from django.utils.html import format_html_join
from django.utils.safestring import mark_safe

from audit import providers
from audit.models import AuditEvent
from audit.selectors import AuditFilters

# Outcomes the audit log's own records use besides a connection test's.
RECORD_OUTCOMES: tuple[str, ...] = ("internal_error", "rate_limited", "permission_denied", "ok")


def known_outcomes() -> tuple[str, ...]:
    """Outcomes the connection test and the audit log use; the field also accepts any other."""
    return (*providers.get().outcome_codes(), *RECORD_OUTCOMES)


KIND_CHOICES = [("", "All kinds"), *AuditEvent.Kind.choices]


class AuditFilterForm(forms.Form):
    """The list template writes its own inputs; this form validates and builds the options."""

    q = forms.CharField(label="Connector name", required=False, max_length=64)
    # Ids, not choices: the export validates them without listing every connector and user.
    connector = forms.IntegerField(label="Connector", required=False, min_value=1)
    kind = forms.ChoiceField(label="Kind", required=False, choices=KIND_CHOICES)
    outcome = forms.CharField(label="Outcome", required=False, max_length=32)
    user = forms.IntegerField(label="User", required=False, min_value=1)
    since = forms.DateField(label="From", required=False)
    until = forms.DateField(label="To", required=False)

    def _options(self, name: str, choices: Iterable[tuple[Any, str]]) -> str:
        """A select's <option> list, built in Python: hundreds of connectors render in ~0.1 ms."""
        current = str(self.data.get(name, "")) if self.is_bound else ""
        return format_html_join(
            "",
            '<option value="{}"{}>{}</option>',
            (
                (value, mark_safe(" selected") if str(value) == current else "", label)  # noqa: S308
                for value, label in choices
            ),
        )

    def connector_options(self) -> str:
        # Only names and ids: listing connectors must never decrypt their secrets.
        connectors = [(str(pk), name) for pk, name in providers.get().connector_choices()]
        wanted = str(self.data.get("connector", "")) if self.is_bound else ""
        if wanted.isdigit() and wanted not in {pk for pk, _ in connectors}:
            connectors.append((wanted, f"#{wanted} (deleted)"))
        return self._options("connector", [("", "All connectors"), *connectors])

    def kind_options(self) -> str:
        return self._options("kind", KIND_CHOICES)

    def user_options(self) -> str:
        users = get_user_model().objects.order_by("username").values_list("pk", "username")
        return self._options("user", [("", "All users"), *((str(pk), name) for pk, name in users)])

    def filters(self) -> AuditFilters:
        """The valid fields as filters (an invalid one is reported and ignored)."""
        data = self.cleaned_data if hasattr(self, "cleaned_data") else {}
        return AuditFilters(
            connector_id=data.get("connector"),
            kind=data.get("kind") or "",
            outcome=(data.get("outcome") or "").strip(),
            user_id=data.get("user"),
            since=data.get("since"),
            until=data.get("until"),
            q=(data.get("q") or "").strip(),
        )
