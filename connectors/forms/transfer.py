"""The small forms of the import and export pages."""

from __future__ import annotations

from django import forms


class ImportForm(forms.Form):
    file = forms.FileField(
        label="Connectors file (JSON)",
        help_text="The format of connectors_export. Connectors are matched by name; secrets the "
        "file leaves empty keep their stored values. Nothing changes unless every connector "
        "in the file is valid.",
    )


class ExportForm(forms.Form):
    include_secrets = forms.BooleanField(
        required=False,
        label="Include secrets",
        help_text="Writes client secrets, passwords, keys and tokens in plain text into the "
        "file. The export is recorded in the audit log. Leave unticked unless you are moving "
        "connectors to another installation.",
    )
