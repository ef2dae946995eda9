"""The connector form and its two row formsets, built and validated together."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, cast

from django.forms import BoundField
from django.forms.utils import ErrorDict, ErrorList

from connectors import rules
from connectors.domain import ParamRow, RowLike
from connectors.forms.connector import ConnectorForm
from connectors.forms.rows import (
    AuthorizeFormSet,
    BaseParamFormSet,
    DataFormSet,
    HeaderFormSet,
    shown_rows,
)
from connectors.models import AuthConfig, Connector, GrantType, TokenRequestParam


@dataclass(frozen=True)
class SummaryItem:
    """One line of the error summary: where, what, and the id of the field to jump to."""

    where: str
    message: str
    anchor: str


# Formset errors not tied to a row jump to the formset; the row's fields are named in words.
ROW_FIELD_WORDS = {"key": "name", "value": "value", "sensitive": "Sensitive", "DELETE": "Remove"}


@dataclass
class ConnectorForms:
    """The connector form and its row formsets, validated together."""

    form: ConnectorForm
    headers: BaseParamFormSet
    data: BaseParamFormSet
    # Set by the edit view after saving: whether the save changed nothing.
    unchanged: bool = False
    # Additional Authorization Parameters (Authorization Code Grant).
    authorize: BaseParamFormSet | None = None

    @property
    def formsets(self) -> list[BaseParamFormSet]:
        """The formsets that count: Additional Authorization Parameters only for their grant."""
        cleaned = getattr(self.form, "cleaned_data", {})
        grant = cleaned.get("oauth2_grant_type", "")
        authorize = self.authorize if grant == GrantType.AUTHORIZATION_CODE else None
        return [self.headers, self.data, *([authorize] if authorize is not None else [])]

    def is_valid(self) -> bool:
        form_ok = self.form.is_valid()
        if self.form.cleaned_data.get("auth_config") != AuthConfig.OAUTH2:
            return form_ok  # rows are dropped for other Auth Configs, so their errors don't count
        rows_ok = all([formset.is_valid() for formset in self.formsets])
        moved = self.form.rows_destination_moved() if rows_ok else None
        if moved is not None:
            label = str(self.form.fields[moved].label)
            rows_ok = self.headers.refuse_kept_values(label) & self.data.refuse_kept_values(label)
        return form_ok and rows_ok

    def rows(self) -> list[ParamRow]:
        if self.form.cleaned_data.get("auth_config") != AuthConfig.OAUTH2:
            return []
        rows = [row for formset in self.formsets for row in formset.rows()]
        return rules.rows_for_grant(rows, self.form.cleaned_data.get("oauth2_grant_type", ""))

    @property
    def warnings(self) -> list[str]:
        return self.form.warnings

    def error_list(self, *, json_keys: bool = False) -> list[tuple[str, str]]:
        """Every error as (where, message); rows are named as in the page or the JSON file."""
        fields = self.form.fields
        return rules.errors_listed(
            [(name, _texts(messages)) for name, messages in self.form.errors.items()],
            [
                (
                    formset.kind,
                    _texts(formset.non_form_errors()),
                    [
                        {name: _texts(messages) for name, messages in row.items()}
                        for row in cast(list[ErrorDict], formset.errors)
                    ],
                )
                for formset in self.formsets
            ],
            label=lambda name: str(fields[name].label) if name in fields else "connector",
            json_keys=json_keys,
        )

    def error_summary(self, *, skip_codes: tuple[str, ...] = ()) -> list[SummaryItem]:
        """Every error of the page, each with the id of its field to jump to.

        Rows are named as the page labels them ("Additional Headers row 2 name"). Row errors
        count only when the rows are used (Oauth2), as in is_valid.
        """
        form = self.form
        items = [
            SummaryItem("Connector", message, "")
            for error in form.non_field_errors().as_data()
            if error.code not in skip_codes
            for message in error.messages
        ]
        for name in form.fields:
            if name in form.errors:
                items += _field_items(form[name], form.errors[name], skip_codes)
        if form.is_bound and form.cleaned_data.get("auth_config") == AuthConfig.OAUTH2:
            for formset in (self.headers, self.data):
                items += _formset_items(formset)
        return items


def _field_items(
    field: BoundField, errors: ErrorList, skip_codes: tuple[str, ...]
) -> list[SummaryItem]:
    anchor = "" if field.is_hidden else field.auto_id
    return [
        SummaryItem(str(field.label), message, anchor)
        for error in errors.as_data()
        if error.code not in skip_codes
        for message in error.messages
    ]


def _formset_items(formset: BaseParamFormSet) -> list[SummaryItem]:
    title = str(TokenRequestParam.Kind(formset.kind).label)
    items = [
        SummaryItem(title, str(message), f"cc-formset-{formset.prefix}")
        for message in formset.non_form_errors()
    ]
    for index, row in enumerate(formset.forms):
        for name, messages in row.errors.items():
            where = f"{title} row {index + 1}"
            if name in ROW_FIELD_WORDS:
                where = f"{where} {ROW_FIELD_WORDS[name]}"
            anchor = row[name].auto_id if name in row.fields else ""
            items += [SummaryItem(where, str(message), anchor) for message in messages]
    return items


def _texts(errors: ErrorList) -> list[str]:
    """An error list's messages; iterating an ErrorList renders each error's message."""
    return [str(message) for message in errors]


def connector_forms(
    *,
    data: Any = None,
    instance: Connector | None = None,
    initial: dict[str, Any] | None = None,
    initial_rows: Sequence[RowLike] | None = None,
    clone_of: Connector | None = None,
) -> ConnectorForms:
    """Build the form and formsets for a new or stored connector, bound to `data` if given."""
    instance = instance if instance is not None else Connector()
    stored: list[RowLike] = list(instance.params.all()) if instance.pk else []
    client_auth = None
    if data is not None:
        client_auth = data.get("oauth2_client_authentication", "")
    form = ConnectorForm(data=data, instance=instance, initial=initial, clone_of=clone_of)
    formsets = []
    for formset_class in (HeaderFormSet, DataFormSet, AuthorizeFormSet):
        rows = [row for row in (stored or initial_rows or []) if row.kind == formset_class.kind]
        kwargs: dict[str, Any] = {
            "prefix": formset_class.prefix_name,
            "client_authentication": client_auth,
        }
        if instance.pk:
            kwargs["stored"] = rows
        elif initial_rows is not None:
            kwargs["initial"] = shown_rows(rows)
        formsets.append(
            formset_class(data, **kwargs) if data is not None else formset_class(**kwargs)
        )
    return ConnectorForms(form=form, headers=formsets[0], data=formsets[1], authorize=formsets[2])
