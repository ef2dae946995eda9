"""Template filters for showing audit history: everything passes through redaction on the way out.

`redactor` (optional filter argument) is an `audit.sanitize.Secrets` holding the connector's own
secret values; without it the generic redaction rules still apply.
"""

from __future__ import annotations

import json
from typing import Any

from django import template
from django.utils import timezone
from django.utils.html import format_html, format_html_join
from django.utils.text import Truncator

from audit import providers
from audit.actors import actor_label as _actor_label
from audit.sanitize import (
    NO_SECRETS,
    Secrets,
    body_redact,
    details_redact,
    headers_redact,
    url_redact,
)

register = template.Library()

GOOD_OUTCOMES = frozenset({"success", "ok"})
DENIAL_OUTCOMES = frozenset({"blocked", "rate_limited", "permission_denied"})


def _secrets(redactor: Any) -> Secrets:
    return redactor if isinstance(redactor, Secrets) else NO_SECRETS


@register.filter
def actor_label(username: Any) -> str:
    """Who did it: system identities by their label (e.g. "Scheduler (system)")."""
    return _actor_label(str(username or ""))


@register.filter
def audit_text(value: Any, redactor: Any = None) -> str:
    return _secrets(redactor).text(value)


@register.filter
def audit_url(value: Any, redactor: Any = None) -> str:
    return url_redact(str(value or ""), secrets=_secrets(redactor))


@register.filter
def audit_headers(value: Any, redactor: Any = None) -> list[tuple[str, str]]:
    return headers_redact(value, secrets=_secrets(redactor))


@register.filter
def audit_pairs(value: Any, redactor: Any = None) -> list[tuple[str, str]]:
    return body_redact(value, secrets=_secrets(redactor))


@register.filter
def audit_json(value: Any, redactor: Any = None) -> str:
    """Pretty JSON, redacted (for details, token facts and tested configuration)."""
    if value in (None, "", {}, []):
        return ""
    return json.dumps(details_redact(value, secrets=_secrets(redactor)), indent=2, sort_keys=True)


@register.filter
def audit_value(value: Any, redactor: Any = None) -> str:
    """One before/after value of a change, as text."""
    if value is None or value == "":
        return "—"
    if isinstance(value, list):
        return "\n".join(_secrets(redactor).text(item) for item in value) or "—"
    if isinstance(value, dict):
        return audit_json(value, redactor)
    return _secrets(redactor).text(value)


@register.filter
def client_auth_label(attempt: Any) -> str:
    """The step's header: the method's one name, from the connectors app's label table."""
    code = getattr(attempt, "client_authentication", "") or ""
    labels = providers.get().client_auth_labels()
    if code in labels:
        return labels[code]
    if getattr(attempt, "step", "") == "api":
        return "API request"
    return code or "Token request"


@register.filter
def outcome_class(outcome: Any) -> str:
    """Bootstrap colour for an outcome badge."""
    outcome = str(outcome or "")
    if outcome in GOOD_OUTCOMES:
        return "success"
    if outcome in DENIAL_OUTCOMES:
        return "warning"
    return "danger" if outcome else "secondary"


@register.filter
def outcome_badge(outcome: Any, ok: Any = None) -> str:
    """The one badge of an outcome: its readable label, with the code beside it.

    `ok` (a run's flag) picks the colour when given; otherwise the code does.
    """
    code = str(outcome or "")
    if not code:
        return ""
    colour = outcome_class(code) if ok is None or ok == "" else ("success" if ok else "danger")
    return format_html(
        '<span class="cc-outcome text-nowrap" data-cc-outcome="{code}">'
        '<span class="badge text-bg-{colour}">{label}</span> '
        '<code class="small text-body-secondary">{code}</code></span>',
        code=code,
        colour=colour,
        label=providers.get().outcome_label(code),
    )


@register.filter
def kind_class(kind: Any) -> str:
    return {"test_run": "primary", "change": "info", "denial": "warning"}.get(
        str(kind), "secondary"
    )


ROW = (
    '<tr><td class="small"><a href="{url}{pk}/">{pk}</a></td>'
    '<td class="small text-nowrap"><time datetime="{iso}">{when}</time></td>'
    '<td><span class="badge text-bg-{kind_class}">{kind}</span> '
    '<span class="small">{action}</span></td>'
    '<td class="small">{connector}</td>'
    '<td class="small">{user}</td>'
    "<td>{outcome}</td>"
    '<td class="small"><a class="link-body-emphasis text-decoration-none" href="{url}{pk}/">'
    "{summary}</a></td></tr>"
)


def _connector_cell(event: Any, url: str) -> str:
    if event.connector_id:
        return format_html(
            '<a href="{}?connector={}" title="Only this connector\'s records">{}</a>',
            url,
            event.connector_id,
            event.connector_name or event.connector_id,
        )
    return event.connector_name or "—"


def _outcome_cell(outcome: str) -> str:
    return outcome_badge(outcome)


@register.simple_tag
def audit_rows(events: Any, list_url: str) -> str:
    """The list's table rows, built in Python: 50 rows in ~1 ms instead of ~10 with nodes."""
    return format_html_join(
        "",
        "{}",
        (
            (
                format_html(
                    ROW,
                    url=list_url,
                    pk=event.pk,
                    iso=event.created_at.isoformat(),
                    when=timezone.localtime(event.created_at).strftime("%Y-%m-%d %H:%M:%S"),
                    kind_class=kind_class(event.kind),
                    kind=event.get_kind_display(),
                    action=event.action,
                    connector=_connector_cell(event, list_url),
                    user=event.username or "—",
                    outcome=_outcome_cell(event.outcome),
                    summary=Truncator(audit_text(event.summary)).chars(160) or "(no summary)",
                ),
            )
            for event in events
        ),
    )
