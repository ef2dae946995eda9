"""Forms of the fleet settings: the schedule (default and per connector) and notification rules.

The webhook URL is a secret (it carries its own credential): it is never rendered back. A blank
box keeps the stored URL and "Clear it" removes it, as on the connector form.
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.core.validators import validate_email

from connectors.forms.connector import STORED_LABEL, SecretFieldView, SecretInput
from connectors.models import Connector, ConnectorSchedule, NotificationRule

MAX_INTERVAL_MINUTES = 30 * 24 * 60
MIN_INTERVAL_MINUTES = 5


class ScheduleDefaultForm(forms.Form):
    default_interval_minutes = forms.IntegerField(
        label="Re-test every (minutes)",
        min_value=0,
        max_value=MAX_INTERVAL_MINUTES,
        help_text="The default for every enabled connector, e.g. 360 for every 6 hours. "
        "0 turns scheduled tests off. Tests are spread over the interval.",
    )

    def clean_default_interval_minutes(self) -> int:
        minutes = int(self.cleaned_data["default_interval_minutes"])
        if 0 < minutes < MIN_INTERVAL_MINUTES:
            raise forms.ValidationError(f"Use 0 (off) or at least {MIN_INTERVAL_MINUTES} minutes.")
        return minutes


class ConnectorScheduleForm(forms.Form):
    # A name box, not a select: the inventory can hold thousands of connectors.
    connector = forms.CharField(label="Connector name", max_length=64)
    mode = forms.ChoiceField(choices=ConnectorSchedule.Mode.choices, label="Schedule")
    interval_minutes = forms.IntegerField(
        label="Its interval (minutes)",
        required=False,
        min_value=MIN_INTERVAL_MINUTES,
        max_value=MAX_INTERVAL_MINUTES,
        help_text='Only for "Its own interval".',
    )

    def clean_connector(self) -> Connector:
        name = self.cleaned_data["connector"].strip()
        connector = Connector.objects.filter(name=name).first()
        if connector is None:
            raise forms.ValidationError("There is no connector with this name.")
        return connector

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        if cleaned.get("mode") == ConnectorSchedule.Mode.EVERY and not cleaned.get(
            "interval_minutes"
        ):
            self.add_error("interval_minutes", "Enter the interval for this connector.")
        return cleaned


def _emails(text: str) -> list[str]:
    return [e.strip() for e in text.replace(",", "\n").splitlines() if e.strip()]


class NotificationRuleForm(forms.ModelForm):
    webhook_url_clear = forms.BooleanField(label="Clear it", required=False)

    class Meta:
        model = NotificationRule
        fields = ["owner_team", "emails", "webhook_url", "enabled"]
        labels = {
            "owner_team": "Owner team",
            "emails": "Email addresses",
            "webhook_url": "Webhook URL",
        }
        help_texts = {
            "owner_team": "Connectors whose Owner Team is exactly this. Leave blank for the "
            "default rule: connectors with no team, or a team without a rule.",
            "webhook_url": "Receives a JSON POST (Slack-compatible incoming webhooks accept it). "
            "Stored encrypted and never shown again.",
        }
        widgets = {"emails": forms.Textarea(attrs={"rows": 3})}

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["webhook_url"].widget = SecretInput()
        self.fields["webhook_url"].required = False
        self.stored_webhook = bool(self.instance.pk and self.instance.webhook_url)
        if self.stored_webhook:
            self.fields["webhook_url"].widget.attrs["placeholder"] = STORED_LABEL

    def clean_emails(self) -> str:
        addresses = _emails(self.cleaned_data.get("emails") or "")
        for address in addresses:
            try:
                validate_email(address)
            except forms.ValidationError:
                raise forms.ValidationError(f"{address} is not an email address.") from None
        return "\n".join(addresses)

    def clean_webhook_url(self) -> str:
        url = (self.cleaned_data.get("webhook_url") or "").strip()
        if url:
            forms.URLField(assume_scheme="https").clean(url)
            if not url.lower().startswith(("https://", "http://")):
                raise forms.ValidationError("Use an http:// or https:// URL.")
        return url

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        if not cleaned.get("webhook_url") and self.stored_webhook:
            # Blank keeps the stored URL, unless "Clear it" is ticked.
            cleaned["webhook_url"] = (
                "" if cleaned.get("webhook_url_clear") else (self.instance.webhook_url)
            )
        if not cleaned.get("emails") and not cleaned.get("webhook_url"):
            raise forms.ValidationError("Give email addresses, a webhook URL, or both.")
        return cleaned

    @property
    def secret(self) -> SecretFieldView:
        return SecretFieldView(self["webhook_url"], self["webhook_url_clear"], self.stored_webhook)
