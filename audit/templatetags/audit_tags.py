"""Template filters for showing audit history: everything passes through redaction on the way out.

`redactor` (optional filter argument) is an `audit.sanitize.Secrets` holding the connector's own
secret values; without it the generic redaction rules still apply.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import json
import re
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
    _pairs,
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


def _segment_json(segment: str) -> Any:
    """One base64url segment of a compact JWS as JSON, or None."""
    try:
        raw = base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))
        return json.loads(raw)
    except (binascii.Error, ValueError):
        return None


def _utc(value: Any) -> str:
    if isinstance(value, int | float) and not isinstance(value, bool) and 0 < value < 2**33:
        return dt.datetime.fromtimestamp(value, tz=dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    return ""


@register.filter
def signed_jwts(attempt: Any, redactor: Any = None) -> list[dict[str, Any]]:
    """The JWTs the console signed and sent in this step, decoded: header and claims only.

    They are stored as header.claims.<mask> (the HTTP core never keeps a signature), so this
    reads the parts a user needs to compare with what the provider expects: iss, sub, aud,
    exp, kid.
    """
    mask = re.escape(providers.get().redaction.MASK)
    shape = re.compile(rf"(?:Bearer\s+)?([A-Za-z0-9_-]+)\.([A-Za-z0-9_-]+)\.{mask}")
    secrets = _secrets(redactor)
    found = []
    places = [
        *((f"{k} header", v) for k, v in _pairs(getattr(attempt, "request_headers", None))),
        *((str(k), v) for k, v in _pairs(getattr(attempt, "request_body", None))),
    ]
    for where, value in places:
        match = shape.fullmatch(str(value))
        if match is None:
            continue
        header, claims = _segment_json(match.group(1)), _segment_json(match.group(2))
        if not isinstance(header, dict) or not isinstance(claims, dict):
            continue
        claims = secrets.json(claims)
        times = {name: _utc(claims.get(name)) for name in ("iat", "exp")}
        found.append(
            {
                "where": where,
                "header": json.dumps(secrets.json(header), indent=2),
                "claims": json.dumps(claims, indent=2),
                "issued": times["iat"],
                "expires": times["exp"],
            }
        )
    return found


@register.filter
def client_auth_label(attempt: Any) -> str:
    """The step's header: the method's one name, from the connectors app's label table."""
    code = getattr(attempt, "client_authentication", "") or ""
    labels = providers.get().client_auth_labels()
    if code in labels:
        return labels[code]
    if getattr(attempt, "step", "") == "api":
        return "API request with the credentials"
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
    if not outcome:
        return ""
    return format_html('<span class="badge text-bg-{}">{}</span>', outcome_class(outcome), outcome)


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
