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
from django.utils.safestring import mark_safe
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
from audit.wording import action_words, refused_action

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


@register.filter
def kind_words(event: Any) -> str:
    """What the record is, in words ("Edit", "Test run", "Refused"): see audit.wording."""
    return action_words(str(getattr(event, "kind", "")), str(getattr(event, "action", "")))


def _refusal(event: Any) -> str:
    """The refused action in words, from the record or the list's few keys of its details."""
    if getattr(event, "kind", "") != "denial":
        return ""
    details = event.__dict__.get("details")  # not read on the list: the annotations stand in
    if not isinstance(details, dict):
        details = {
            "url_name": getattr(event, "refusal_url_name", None) or "",
            "method": getattr(event, "refusal_method", None) or "",
            "path": getattr(event, "refusal_path", None) or "",
        }
    return refused_action(
        action=event.action,
        details=details,
        summary=event.summary,
        connector_name=event.connector_name,
    )


@register.filter
def refusal_words(event: Any) -> str:
    """ "open the edit form of hr_portal" for a refusal ("" when it cannot be told)."""
    return _refusal(event)


@register.filter
def summary_words(event: Any, redactor: Any = None) -> str:
    """The summary as the pages show it: a refusal names what was refused, in words."""
    # Only a summary that names the method and path is replaced: the others are words already
    # ("Sign-in failed for 'bob'", the rate limit's own message).
    refused = _refusal(event) if " may not " in str(event.summary or "") else ""
    if refused:
        who = _actor_label(str(event.username or "")) or "Someone"
        return _secrets(redactor).text(f"{who} may not {refused}")
    return audit_text(event.summary, redactor)


ROW = (
    '<tr><td class="small"><a href="{url}{pk}/">{pk}</a></td>'
    '<td class="small text-nowrap"><time datetime="{iso}">{when}</time></td>'
    '<td><span class="badge text-bg-{kind_class}" title="{code}">{kind}</span></td>'
    '<td class="small">{connector}</td>'
    '<td class="small">{user}</td>'
    "<td>{outcome}</td>"
    '<td class="small"><a class="link-body-emphasis text-decoration-none" href="{url}{pk}/">'
    "{summary}</a></td></tr>"
)

# The list's columns, shared by its own table and a grouped entry's (audit/audit.css widths).
COLUMNS = mark_safe(  # noqa: S308 - constant markup
    '<colgroup><col class="audit-col-id"><col class="audit-col-when"><col class="audit-col-what">'
    '<col class="audit-col-connector"><col class="audit-col-user"><col class="audit-col-outcome">'
    '<col class="audit-col-summary"></colgroup>'
)

GROUP = (
    '<tr class="audit-group" data-audit-group="{key}"><td colspan="7" class="p-0">'
    '<details><summary class="small">'
    '<span class="badge text-bg-{kind_class}">{kind}</span> {title} '
    '<span class="text-body-secondary">· {count} records · {user} · '
    '<time datetime="{iso}">{when}</time></span></summary>'
    '<table class="table table-sm table-hover align-middle audit-table">{columns}'
    '<caption class="visually-hidden">The {count} records of this entry</caption>'
    '<thead class="visually-hidden"><tr><th scope="col">#</th><th scope="col">When (UTC)</th>'
    '<th scope="col">What</th><th scope="col">Connector</th><th scope="col">User</th>'
    '<th scope="col">Outcome</th><th scope="col">Summary</th></tr></thead>'
    "<tbody>{rows}</tbody></table></details></td></tr>"
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


def _when(event: Any) -> str:
    return timezone.localtime(event.created_at).strftime("%Y-%m-%d %H:%M:%S")


def _row(event: Any, list_url: str) -> str:
    return format_html(
        ROW,
        url=list_url,
        pk=event.pk,
        iso=event.created_at.isoformat(),
        when=_when(event),
        kind_class=kind_class(event.kind),
        code=f"{event.kind}/{event.action}",
        kind=kind_words(event),
        connector=_connector_cell(event, list_url),
        user=event.username or "—",
        outcome=_outcome_cell(event.outcome),
        summary=Truncator(summary_words(event)).chars(160) or "(no summary)",
    )


def _group_title(key: tuple[str, str], events: list[Any]) -> str:
    """What a batch's or an import's records add up to, in a line."""
    kind, ident = key
    if kind == "import":
        names = [e.connector_name for e in reversed(events) if e.connector_name]
        shown = ", ".join(names[:5]) + (f" and {len(names) - 5} more" if len(names) > 5 else "")
        return f"{len(names)} connectors: {shown}" if names else f"import {ident}"
    runs = [e for e in events if e.kind == "test_run"]
    passed = sum(e.outcome in GOOD_OUTCOMES for e in runs)
    tests = f"{len(runs)} tests ({passed} passed, {len(runs) - passed} failed)" if runs else ""
    return f"#{ident}" + (f": {tests}" if tests else "")


GROUP_WORDS = {"batch": "Batch test", "import": "Import"}


def _group(entry: Any, list_url: str) -> str:
    events = entry.events
    newest, oldest = events[0], events[-1]
    when = _when(oldest) + (f" – {_when(newest)[11:]}" if _when(oldest) != _when(newest) else "")
    return format_html(
        GROUP,
        key=":".join(entry.key),
        kind_class="info" if entry.key[0] == "import" else "primary",
        kind=GROUP_WORDS[entry.key[0]],
        title=_group_title(entry.key, events),
        count=len(events),
        user=_actor_label(str(newest.username or "")) or "—",
        iso=oldest.created_at.isoformat(),
        when=when + " UTC",
        columns=COLUMNS,
        rows=format_html_join("", "{}", ((_row(e, list_url),) for e in events)),
    )


@register.simple_tag
def audit_columns() -> str:
    return COLUMNS


@register.simple_tag
def audit_rows(entries: Any, list_url: str) -> str:
    """The list's table rows, built in Python: 50 rows in ~1 ms instead of ~10 with nodes.

    `entries` are audit.selectors.AuditEntry: a record, or a batch's or an import's records on
    the page, shown as one row that expands (a <details>, so it works without JavaScript).
    """
    return format_html_join(
        "",
        "{}",
        (
            ((_group(entry, list_url) if entry.grouped else _row(entry.event, list_url)),)
            for entry in entries
        ),
    )
