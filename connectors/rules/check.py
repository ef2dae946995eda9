"""The connector rules applied to plain values, without a form: for import, pinning and the API.

`connector_check` walks the same steps as the connector form (Django's field checks, the field
rules, the Auth Config rules, the model's validators, then the rows), so a value is refused with
the same message and code whichever way it arrives. No POST data is built: values are keyed by
model field name, and rows are plain dicts with key, value and sensitive.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from django import forms
from django.core.exceptions import NON_FIELD_ERRORS, ValidationError
from django.forms.models import fields_for_model

from connectors.domain import (
    CONNECTOR_FIELDS,
    ParamRow,
    StoredConnector,
    field_label,
)
from connectors.models import AuthConfig, Connector, TokenRequestParam
from connectors.rules.connector import (
    OPTIONAL_FIELDS,
    ca_bundle_clean,
    connector_clean,
    name_clean,
    plain_http_warning,
    request_path_clean,
    rows_destination_moved,
    url_clean,
)
from connectors.rules.rows import (
    ABSOLUTE_MAX_PARAM_ROWS,
    MAX_PARAM_ROWS,
    row_fields,
    rows_clean,
    rows_for_grant,
    rows_refuse_kept_values,
    rows_resolved,
)

# Where each kind of row is reported: the page's title and the JSON file's key.
ROW_PLACES: dict[str, tuple[str, str]] = {
    TokenRequestParam.Kind.HEADER: ("Additional Headers", "additional_headers"),
    TokenRequestParam.Kind.DATA: ("Additional Request Data", "additional_request_data"),
    TokenRequestParam.Kind.AUTHORIZE: (
        "Additional Authorization Parameters",
        "additional_authorization_parameters",
    ),
}

ErrorDict = dict[str, list[ValidationError]]


def messages_of(errors: Iterable[ValidationError]) -> list[str]:
    """The rendered messages of some errors (params filled in), in order."""
    return [message for error in errors for message in error.messages]


def errors_listed(
    connector_errors: Iterable[tuple[str, list[str]]],
    row_errors: Iterable[tuple[str, list[str], list[dict[str, list[str]]]]],
    *,
    label: Callable[[str], str],
    json_keys: bool,
) -> list[tuple[str, str]]:
    """Every error as (where, message); rows are named as in the page or the JSON file."""
    errors = [(label(name), msg) for name, messages in connector_errors for msg in messages]
    for kind, non_row, rows in row_errors:
        title, json_key = ROW_PLACES[kind]
        errors += [(json_key if json_keys else title, msg) for msg in non_row]
        for index, errors_of_row in enumerate(rows):
            for name, messages in errors_of_row.items():
                where = f"{json_key}[{index}].{name}" if json_keys else f"{title} row {index + 1}"
                errors += [(where, msg) for msg in messages]
    return errors


class Cleaning:
    """Cleaned values and their errors: what the rules write to, as a form would hold them."""

    def __init__(self, fields: Mapping[str, forms.Field]) -> None:
        self.fields = fields
        self.cleaned_data: dict[str, Any] = {}
        self.errors: ErrorDict = {}
        self.warnings: list[str] = []

    def add_error(self, field: str | None, error: ValidationError) -> None:
        """Record an error (one, a list, or a dict by field) and drop the field's value."""
        by_field = (
            error.error_dict
            if hasattr(error, "error_dict")
            else {field or NON_FIELD_ERRORS: error.error_list}
        )
        for name, error_list in by_field.items():
            self.errors.setdefault(name, []).extend(error_list)
            self.cleaned_data.pop(name, None)

    def has_error(self, field: str, code: str | None = None) -> bool:
        return field in self.errors and (
            code is None or any(error.code == code for error in self.errors[field])
        )

    def clean_field(self, name: str, raw: Any, hook: Callable[[Any], Any] | None = None) -> None:
        """Django's check of one field, then its rule, as Form._clean_fields does."""
        try:
            value = self.fields[name].clean(raw)
            self.cleaned_data[name] = value
            if hook is not None:
                self.cleaned_data[name] = hook(value)
        except ValidationError as error:
            self.add_error(name, error)

    def messages(self) -> list[tuple[str, list[str]]]:
        return [(name, messages_of(errors)) for name, errors in self.errors.items()]


def connector_fields() -> dict[str, forms.Field]:
    """The connector's typed fields, made exactly as the connector form makes them."""
    fields = fields_for_model(Connector, fields=CONNECTOR_FIELDS)
    for name in OPTIONAL_FIELDS:
        fields[name].required = False
    return fields


@dataclass
class RowsCheck:
    """One kind of rows, checked: per-row cleanings, and errors about the rows as a whole."""

    kind: str
    rows: list[Cleaning]
    non_row_errors: list[ValidationError] = field(default_factory=list)

    @property
    def indexed(self) -> list[tuple[int, Cleaning]]:
        return list(enumerate(self.rows))

    @property
    def ok(self) -> bool:
        return not self.non_row_errors and not any(row.errors for row in self.rows)

    def messages(self) -> tuple[str, list[str], list[dict[str, list[str]]]]:
        return (
            self.kind,
            messages_of(self.non_row_errors),
            [dict(row.messages()) for row in self.rows],
        )


def rows_check(
    kind: str,
    raw_rows: Sequence[Mapping[str, Any]],
    *,
    stored: Iterable[ParamRow],
    client_authentication: str | None,
) -> RowsCheck:
    """Check rows as the form's formset does: each row's fields, the count, then the rules."""
    result = RowsCheck(kind=kind, rows=[])
    for raw in raw_rows[:ABSOLUTE_MAX_PARAM_ROWS]:
        row = Cleaning(row_fields())
        # A row left entirely blank is skipped, like an extra form nobody filled in.
        if any(f.has_changed(None, raw.get(name)) for name, f in row.fields.items()):
            for name in row.fields:
                row.clean_field(name, raw.get(name))
        result.rows.append(row)
    if len(raw_rows) > MAX_PARAM_ROWS:
        message = forms.BaseFormSet.default_error_messages["too_many_forms"]
        result.non_row_errors.append(
            ValidationError(message % {"num": MAX_PARAM_ROWS}, code="too_many_forms")
        )
    elif not any(row.errors for row in result.rows):
        rows_clean(
            result.indexed,
            kind=kind,
            stored=stored,
            client_authentication=client_authentication,
        )
    return result


@dataclass
class ConnectorCheck:
    """A connector's values, checked: the instance to save, its rows, errors and warnings."""

    instance: Connector
    values: Cleaning
    rows: dict[str, RowsCheck]
    stored: StoredConnector | None
    warnings: list[str] = field(default_factory=list)

    @property
    def oauth2(self) -> bool:
        return self.values.cleaned_data.get("auth_config") == AuthConfig.OAUTH2

    @property
    def ok(self) -> bool:
        return not self.values.errors and (
            not self.oauth2 or all(rows.ok for rows in self.rows.values())
        )

    def param_rows(self) -> list[ParamRow]:
        """The rows to store (none unless the Auth Config is Oauth2)."""
        if not self.oauth2:
            return []
        stored = self.stored.rows if self.stored is not None else ()
        resolved = [
            param
            for kind, rows in self.rows.items()
            for param in rows_resolved(
                [row.cleaned_data for row in rows.rows],
                kind=kind,
                stored=[r for r in stored if r.kind == kind],
            )
        ]
        return rows_for_grant(resolved, self.values.cleaned_data.get("oauth2_grant_type", ""))

    def error_list(self, *, json_keys: bool = False) -> list[tuple[str, str]]:
        """Every error as (where, message), as the connector form lists its own."""
        return errors_listed(
            self.values.messages(),
            [rows.messages() for rows in self.rows.values()],
            label=lambda name: field_label(name) if name in CONNECTOR_FIELDS else "connector",
            json_keys=json_keys,
        )


def connector_check(
    *,
    values: Mapping[str, Any],
    rows: Mapping[str, Sequence[Mapping[str, Any]]],
    instance: Connector | None = None,
    stored: StoredConnector | None = None,
) -> ConnectorCheck:
    """Check a connector's values and rows; `instance` (the saved one, if any) takes them.

    `values` are keyed by model field name; a missing one counts as blank. `rows` maps a row
    kind to its rows. `stored` describes the saved connector when this is an edit.
    """
    target = instance if instance is not None else Connector()
    cleaning = _values_check(values, stored)
    _model_validate(cleaning, target)
    stored_rows = stored.rows if stored is not None else ()
    checked_rows = {
        kind: rows_check(
            kind,
            rows.get(kind, []),
            stored=[r for r in stored_rows if r.kind == kind],
            client_authentication=values.get("oauth2_client_authentication") or "",
        )
        for kind in ROW_PLACES
    }
    check = ConnectorCheck(target, cleaning, checked_rows, stored, cleaning.warnings)
    if check.oauth2 and all(r.ok for r in checked_rows.values()):
        _refuse_kept_row_values(check)
    return check


def _values_check(values: Mapping[str, Any], stored: StoredConnector | None) -> Cleaning:
    """Each field's own check and rule, then the Auth Config rules, as ConnectorForm does."""
    cleaning = Cleaning(connector_fields())
    hooks = _field_hooks(stored, cleaning.warnings)
    for name in CONNECTOR_FIELDS:
        # A saved connector's name cannot change (the form's field is disabled).
        raw = stored.name if name == "name" and stored is not None else values.get(name)
        cleaning.clean_field(name, raw, hooks.get(name))
    connector_clean(cleaning, stored=stored)
    return cleaning


def _refuse_kept_row_values(check: ConnectorCheck) -> None:
    """Stored sensitive row values, and the token they obtain, are not sent to another server."""
    moved = rows_destination_moved(check.values.cleaned_data, check.stored)
    if moved is None:
        return
    stored_rows = check.stored.rows if check.stored is not None else ()
    for kind, checked in check.rows.items():
        rows_refuse_kept_values(
            checked.indexed,
            kind=kind,
            stored=[r for r in stored_rows if r.kind == kind],
            url_label=field_label(moved),
        )


def _field_hooks(
    stored: StoredConnector | None, warnings: list[str]
) -> dict[str, Callable[[Any], Any]]:
    """The field rules, by field, as the form's clean_<field> methods apply them."""

    def url(name: str) -> Callable[[Any], Any]:
        def hook(value: str) -> str:
            value = url_clean(value)
            warning = plain_http_warning(value, field_label(name))
            if warning:
                warnings.append(warning)
            return value

        return hook

    return {
        "name": lambda value: name_clean(value, stored=stored),
        "base_url": url("base_url"),
        "oauth2_token_url": url("oauth2_token_url"),
        "oauth2_authorization_url": url("oauth2_authorization_url"),
        "test_request_path": request_path_clean,
        "ca_bundle": ca_bundle_clean,
    }


def _model_validate(cleaning: Cleaning, instance: Connector) -> None:
    """Write the cleaned values to the instance and run the model's own validators.

    The exclusions are ModelForm's: fields that already failed, fields that are not values of
    this check, and optional blanks of fields the model requires.
    """
    for name in CONNECTOR_FIELDS:
        if name in cleaning.cleaned_data:
            setattr(instance, name, cleaning.cleaned_data[name])
    exclude = set()
    for model_field in Connector._meta.fields:
        name = model_field.name
        form_field = cleaning.fields.get(name)
        if form_field is None or name in cleaning.errors:
            exclude.add(name)
        elif (
            not model_field.blank
            and not form_field.required
            and cleaning.cleaned_data.get(name) in form_field.empty_values
        ):
            exclude.add(name)
    try:
        instance.full_clean(exclude=exclude, validate_unique=False)
    except ValidationError as error:
        for name, errors in error.error_dict.items():
            own = cleaning.fields[name].error_messages if name in cleaning.fields else {}
            for one in errors:
                if one.code in own:
                    one.message = own[one.code]
        cleaning.add_error(None, error)
