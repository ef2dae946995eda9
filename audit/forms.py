"""The audit list's filter form (GET), shared by the page and the export."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django import forms
from django.utils.html import format_html_join
from django.utils.safestring import mark_safe

from audit import providers
from audit.ids import id_from_text
from audit.models import AuditEvent
from audit.selectors import AuditFilters, connector_name_by_id, username_by_id
from audit.wording import kind_words

# Outcomes the audit log's own records use besides a connection test's.
RECORD_OUTCOMES: tuple[str, ...] = ("internal_error", "rate_limited", "permission_denied", "ok")


def known_outcomes() -> tuple[str, ...]:
    """Outcomes the connection test and the audit log use; the field also accepts any other."""
    return (*providers.get().outcome_codes(), *RECORD_OUTCOMES)


# The kinds as words (audit.wording), e.g. "Refused" for denial; the values stay the codes.
KIND_CHOICES = [("", "All kinds"), *((kind, kind_words(kind)) for kind in AuditEvent.Kind.values)]


class AuditFilterForm(forms.Form):
    """The list template writes its own inputs; this form validates and builds the options."""

    q = forms.CharField(label="Connector name", required=False, max_length=64)
    # A name (typed, or picked from the type-ahead) or an id (the links written before it):
    # neither lists every connector and user, on the page or to validate the export.
    connector = forms.CharField(label="Connector", required=False, max_length=64)
    kind = forms.ChoiceField(label="Kind", required=False, choices=KIND_CHOICES)
    outcome = forms.CharField(label="Outcome", required=False, max_length=32)
    user = forms.CharField(label="User", required=False, max_length=150)
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
        """Every connector as <option>s (the page used to list them; it now uses type-ahead)."""
        # Only names and ids: listing connectors must never decrypt their secrets.
        connectors = [(str(pk), name) for pk, name in providers.get().connector_choices()]
        wanted = str(self.data.get("connector", "")) if self.is_bound else ""
        if wanted.isdigit() and wanted not in {pk for pk, _ in connectors}:
            connectors.append((wanted, f"#{wanted} (deleted)"))
        return self._options("connector", [("", "All connectors"), *connectors])

    def kind_options(self) -> str:
        return self._options("kind", KIND_CHOICES)

    def _cleaned_text(self, name: str) -> str:
        data = self.cleaned_data if hasattr(self, "cleaned_data") else {}
        return str(data.get(name) or "").strip()

    def connector_text(self) -> str:
        """The connector filter as the input shows it: an id link shows the connector's name."""
        text = self._cleaned_text("connector")
        connector_id = id_or_none(text)
        return (connector_name_by_id(connector_id) or text) if connector_id else text

    def user_text(self) -> str:
        """The user filter as the input shows it: an id link shows the username."""
        text = self._cleaned_text("user")
        user_id = id_or_none(text)
        return (username_by_id(user_id) or text) if user_id else text

    def filters(self) -> AuditFilters:
        """The valid fields as filters (an invalid one is reported and ignored)."""
        data = self.cleaned_data if hasattr(self, "cleaned_data") else {}
        connector, user = self._cleaned_text("connector"), self._cleaned_text("user")
        return AuditFilters(
            connector_id=id_or_none(connector),
            kind=data.get("kind") or "",
            outcome=(data.get("outcome") or "").strip(),
            user_id=id_or_none(user),
            since=data.get("since"),
            until=data.get("until"),
            q=(data.get("q") or "").strip(),
            connector_name="" if id_or_none(connector) else connector,
            username="" if id_or_none(user) else user,
        )


def id_or_none(text: str) -> int | None:
    """An id as the older ?connector=ID and ?user=ID links carry it (digits only)."""
    # Connector names start with a letter, so digits are an id. A username made only of digits
    # reads as an id too, as it always did in these links.
    number = id_from_text(text)
    return number if number else None
