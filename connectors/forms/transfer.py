"""The small forms of the import and export pages."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from django import forms

from connectors.rules.passphrase import MIN_PASSPHRASE_LENGTH, passphrase_problem


class ImportForm(forms.Form):
    file = forms.FileField(
        label="Connectors file (JSON)",
        help_text="The format of connectors_export. Connectors are matched by name; secrets the "
        "file leaves empty keep their stored values. Nothing changes unless every connector "
        "in the file is valid.",
    )
    passphrase = forms.CharField(
        required=False,
        strip=False,
        label="Passphrase",
        help_text="Only for a file exported with secrets: the passphrase it was encrypted with.",
        widget=forms.PasswordInput(attrs={"autocomplete": "off"}),
    )


SECRET_FIELDS = ("include_secrets", "password", "passphrase", "passphrase_again")


class ExportForm(forms.Form):
    """Export options; with secrets, the user's password and the file's passphrase (twice)."""

    include_secrets = forms.BooleanField(
        required=False,
        label="Include secrets",
        help_text="Writes client secrets, passwords, keys and tokens into the file, encrypted "
        "with the passphrase below. Needs the permission to export secrets; the export is "
        "recorded in the audit log. Leave unticked unless you are moving connectors to another "
        "installation.",
    )
    password = forms.CharField(
        required=False,
        strip=False,
        label="Your password",
        help_text="Confirms that it is you; needed to include secrets.",
        widget=forms.PasswordInput(attrs={"autocomplete": "current-password"}),
    )
    passphrase = forms.CharField(
        required=False,
        strip=False,
        label="File passphrase",
        help_text=f"At least {MIN_PASSPHRASE_LENGTH} characters. The file can be imported only "
        "with it, and it cannot be recovered: keep it apart from the file.",
        widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}),
    )
    passphrase_again = forms.CharField(
        required=False,
        strip=False,
        label="File passphrase again",
        widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}),
    )

    def __init__(self, *args: Any, can_export_secrets: bool = True, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if not can_export_secrets:
            # The page explains the permission instead of offering what it would refuse.
            for name in SECRET_FIELDS:
                del self.fields[name]

    @staticmethod
    def asks_for_secrets(data: Mapping[str, Any]) -> bool:
        """Whether posted data ticks "Include secrets", whichever fields the form offers."""
        return bool(forms.BooleanField(required=False).clean(data.get("include_secrets")))

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if not data.get("include_secrets"):
            return data
        if not data.get("password"):
            self.add_error("password", "Type your password to include secrets.")
        passphrase = data.get("passphrase") or ""
        problem = passphrase_problem(passphrase)
        if problem:
            self.add_error("passphrase", problem)
        elif passphrase != data.get("passphrase_again"):
            self.add_error("passphrase_again", "The two passphrases differ.")
        return data
