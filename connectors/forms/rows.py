"""The key/value formsets of the token request: Additional Headers and Additional Request Data.

Each row is checked by connectors.rules.rows, the same rules import applies to a file's rows.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django import forms
from django.forms import formset_factory

from connectors import rules
from connectors.domain import ParamRow, RowLike, norm_row_key
from connectors.forms.connector import STORED_LABEL, SecretInput
from connectors.models import TokenRequestParam


class ParamForm(forms.Form):
    """One key/value row of Additional Headers or Additional Request Data."""

    def __init__(self, *args: Any, stored_sensitive: bool = False, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields.update(rules.row_fields())
        self.stored_sensitive = stored_sensitive
        # Set by the edit view: a sensitive value typed in the last (failed) submit is carried.
        self.kept = False
        if stored_sensitive:
            # Never render a sensitive value back; blank keeps it.
            self.fields["value"].widget = SecretInput(attrs={"placeholder": STORED_LABEL})

    @property
    def hides_value(self) -> bool:
        """Whether the page may not show this row's value: by the same rule the server stores."""
        key = self["key"].value() or ""
        return self.stored_sensitive or rules.row_is_sensitive(
            key, {"sensitive": self["sensitive"].value()}
        )


def shown_rows(rows: Iterable[RowLike]) -> list[dict[str, Any]]:
    """Rows as a form shows them: a sensitive value is never put back into the page."""
    return [
        {"key": r.key, "value": "" if r.sensitive else r.value, "sensitive": r.sensitive}
        for r in rows
    ]


class BaseParamFormSet(forms.BaseFormSet):
    """Ordered key/value rows; `kind` says whether they are headers or body fields."""

    kind: str = TokenRequestParam.Kind.HEADER
    prefix_name: str = "headers"

    def __init__(
        self,
        *args: Any,
        stored: list[RowLike] | None = None,
        client_authentication: str | None = None,
        **kwargs: Any,
    ) -> None:
        self.stored_rows: list[RowLike] = stored or []
        self.stored = {self._norm(p.key): p for p in self.stored_rows}
        self.client_authentication = client_authentication
        if "initial" not in kwargs and not args and not kwargs.get("data"):
            kwargs["initial"] = shown_rows(self.stored_rows)
        super().__init__(*args, **kwargs)

    def _norm(self, key: str) -> str:
        return norm_row_key(self.kind, key)

    def get_form_kwargs(self, index: int | None) -> dict[str, Any]:
        kwargs = super().get_form_kwargs(index)
        stored_sensitive = False
        if index is not None and index < len(self.stored_rows) and not self.is_bound:
            stored_sensitive = self.stored_rows[index].sensitive
        elif index is not None and self.is_bound:
            key = self.data.get(f"{self.add_prefix(index)}-key", "")
            row = self.stored.get(self._norm(key.strip()))
            stored_sensitive = bool(row and row.sensitive) and not self.data.get(
                f"{self.add_prefix(index)}-value"
            )
        kwargs["stored_sensitive"] = stored_sensitive
        return kwargs

    def _kept_forms(self) -> list[tuple[int, ParamForm]]:
        """(index, form) of the rows not marked for deletion."""
        return [
            (index, form)
            for index, form in enumerate(self.forms)
            if not (self.can_delete and self._should_delete_form(form))  # type: ignore[attr-defined]
        ]

    def clean(self) -> None:
        if any(self.errors):
            return
        rules.rows_clean(
            self._kept_forms(),
            kind=self.kind,
            stored=self.stored_rows,
            client_authentication=self.client_authentication,
        )

    def refuse_kept_values(self, url_label: str = "Oauth2 Token Url") -> bool:
        """Refuse rows that would send a stored sensitive value (or its token) elsewhere."""
        return rules.rows_refuse_kept_values(
            self._kept_forms(), kind=self.kind, stored=self.stored_rows, url_label=url_label
        )

    def rows(self) -> list[ParamRow]:
        """The rows to store, in order, with blank sensitive values resolved to stored ones."""
        return rules.rows_resolved(
            [form.cleaned_data for _index, form in self._kept_forms()],
            kind=self.kind,
            stored=self.stored_rows,
        )


# Empty rows under the stored ones on a new page: without JavaScript (no "Add row") they are the
# only way to add rows, and three let several be added in one save. connector_form.js keeps one.
EMPTY_ROWS = 3


def _param_formset(kind: str, prefix: str) -> type[BaseParamFormSet]:
    formset = formset_factory(
        ParamForm,
        formset=BaseParamFormSet,
        extra=EMPTY_ROWS,
        can_delete=True,
        max_num=rules.MAX_PARAM_ROWS,
        validate_max=True,
        absolute_max=rules.ABSOLUTE_MAX_PARAM_ROWS,
    )
    return type(f"{prefix.capitalize()}FormSet", (formset,), {"kind": kind, "prefix_name": prefix})


HeaderFormSet = _param_formset(TokenRequestParam.Kind.HEADER, "headers")
DataFormSet = _param_formset(TokenRequestParam.Kind.DATA, "data")
AuthorizeFormSet = _param_formset(TokenRequestParam.Kind.AUTHORIZE, "authorize")
