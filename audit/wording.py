"""How the audit log's pages say what a record is: kinds and actions as words, refusals as the
action that was refused. Exports and the API keep the machine codes (kind, action, outcome).

One table per question, read by the list, the detail page and the connector's History tab:

- KIND_WORDS: the kind of a record, for the filter (e.g. "Refused" for `denial`);
- ACTION_WORDS: what one record is, by (kind, action) (e.g. "Edit" for `change`/`edit`);
- REFUSED_ACTIONS: what a refused request tried to do, by the URL name it was refused at and
  its method (e.g. "open the edit form of hr_portal"), with REFUSED_BY_ACTION for refusals that
  are not a page (a sign-in, a test stopped by the rate limit).

The URL names are the console's own (`connectors:edit`, `api-connector`, ...); they are text
here, so the audit app still imports nothing from the connectors app.
"""

from __future__ import annotations

import re
from typing import Any

from django.urls import Resolver404, resolve

KIND_WORDS: dict[str, str] = {
    "test_run": "Test run",
    "change": "Change",
    "denial": "Refused",
    "system": "System",
}

ACTION_WORDS: dict[tuple[str, str], str] = {
    ("test_run", "test"): "Test run",
    ("change", "create"): "Create",
    ("change", "edit"): "Edit",
    ("change", "clone"): "Clone",
    ("change", "delete"): "Delete",
    ("change", "import"): "Import",
    ("change", "export"): "Export",
    ("change", "pin"): "Pin client authentication",
    ("change", "fix"): "One-click fix",
    ("change", "key_rotation"): "Key rotation",
    ("change", "generate_key"): "Key pair generated",
    ("change", "jwks_generate"): "JWKS key generated",
    ("change", "jwks_rotate"): "JWKS rotated",
    ("system", "jwks_rotate"): "JWKS rotated",
    ("system", "jwks_retire"): "JWKS key retired",
    ("change", "jwks_settings"): "JWKS rotation changed",
    ("system", "oauth2_connect"): "Connect started",
    ("system", "oauth2_code_exchange"): "Code exchanged",
    ("change", "oauth2_connected"): "Connected",
    ("system", "oauth2_refresh"): "Token refreshed",
    ("system", "login"): "Sign-in",
    ("system", "logout"): "Sign-out",
    ("system", "logout_idle"): "Signed out (idle)",
    ("system", "batch_test"): "Batch test",
    ("system", "batch_cancel"): "Batch cancelled",
    ("system", "prune"): "Prune",
    ("system", "api_token_create"): "API token created",
    ("system", "api_token_revoke"): "API token revoked",
    ("system", "schedule_default"): "Schedule changed",
    ("system", "schedule_connector"): "Schedule changed",
    ("system", "notify_delivered"): "Notice sent",
    ("system", "notify_failed"): "Notice failed",
    ("system", "notify_rule_created"): "Notice rule created",
    ("system", "notify_rule_changed"): "Notice rule changed",
    ("system", "notify_rule_deleted"): "Notice rule deleted",
}

# What a refused request tried to do: URL name -> phrase, or {method: phrase} where the method
# changes the action ("*" for any other method). "{connector}" is the connector it named.
REFUSED_ACTIONS: dict[str, str | dict[str, str]] = {
    "connectors:list": "see the connector list",
    "connectors:new": {"GET": "open the new connector form", "*": "create a connector"},
    "connectors:new-test": "test the values of a new connector's form",
    "connectors:import": {"GET": "open the import page", "*": "import connectors"},
    "connectors:export": {"GET": "open the export page", "*": "export connectors"},
    "connectors:batch-start": "start a batch test",
    "connectors:batch": "see a batch test",
    "connectors:batch-progress": "follow a batch test",
    "connectors:batch-cancel": "cancel a batch test",
    "connectors:detail": "see {connector}",
    "connectors:edit": {"GET": "open the edit form of {connector}", "*": "save {connector}"},
    "connectors:edit-test": "test the form's values of {connector}",
    "connectors:test": "run a connection test of {connector}",
    "connectors:pin": "pin the client authentication of {connector}",
    "connectors:fix": "apply a one-click fix to {connector}",
    "connectors:clone": {"GET": "open the clone form of {connector}", "*": "clone {connector}"},
    "connectors:delete": {"GET": "open the delete page of {connector}", "*": "delete {connector}"},
    "dashboard": "see the dashboard",
    "fleet:schedule": {"GET": "see the test schedule", "*": "change the test schedule"},
    "fleet:notifications": "see the notification rules",
    "fleet:notification-new": {
        "GET": "open a new notification rule",
        "*": "add a notification rule",
    },
    "fleet:notification-edit": {
        "GET": "open a notification rule",
        "*": "change a notification rule",
    },
    "audit:list": "see the audit log",
    "audit:detail": "see an audit record",
    "audit:export": "export the audit log",
    "audit:suggest": "search the audit log's filters",
    "api-connectors": {
        "GET": "list connectors through the API",
        "*": "create a connector through the API",
    },
    "api-connector": {
        "GET": "read {connector} through the API",
        "DELETE": "delete {connector} through the API",
        "*": "change {connector} through the API",
    },
    "api-connector-test": "run a connection test of {connector} through the API",
    "api-connector-runs": "read the test runs of {connector} through the API",
    "api-batches": {
        "GET": "list batch tests through the API",
        "*": "start a batch test through the API",
    },
    "api-batch": {
        "GET": "read a batch test through the API",
        "*": "cancel a batch test through the API",
    },
    "api-audit": "read the audit log through the API",
    "api-audit-event": "read an audit record through the API",
    "api-import": "import connectors through the API",
    "api-export": "export connectors through the API",
    "api-tokens": {"GET": "see the API tokens", "*": "create an API token"},
    "api-token-revoke": "revoke an API token",
}

# Refusals that are not of a page, by the record's action.
REFUSED_BY_ACTION: dict[str, str] = {
    "rate_limited": "run a connection test of {connector} (too many tests in a short time)",
    "blocked": "reach a blocked address from {connector} (the outbound policy refused it)",
    "connector_disabled": "test {connector}, which is disabled",
    "export_refused": "export connectors with their secrets",
    "login_failed": "sign in (wrong user name or password)",
    "login_locked_out": "sign in (locked out after too many failures)",
    "api_token_refused": "use an API token that is not valid",
    "api_token_expired": "use an expired API token",
}

# Refusals recorded before the URL name was: "alice may not GET /connectors/x/edit/".
_OLD_SUMMARY = re.compile(r" may not ([A-Z]+) (/\S*)$")


def kind_words(kind: str) -> str:
    """The kind as a word (the filter's options): "Refused" for `denial`."""
    return KIND_WORDS.get(kind, kind.replace("_", " ").capitalize() or "Record")


def action_words(kind: str, action: str) -> str:
    """What one record is, in a word or two: "Edit", "Test run", "Refused", "Batch test"."""
    if kind == "denial":
        return "Refused"
    words = ACTION_WORDS.get((kind, action))
    if words:
        return words
    return action.replace("_", " ").capitalize() if action else kind_words(kind)


def _phrase(entry: str | dict[str, str] | None, method: str) -> str:
    if isinstance(entry, dict):
        return entry.get(method.upper(), entry.get("*", ""))
    return entry or ""


def _where(details: dict[str, Any], summary: str) -> tuple[str, str, str]:
    """(URL name, method, connector name in the URL) of a refused request, as far as known."""
    url_name = str(details.get("url_name") or "")
    method = str(details.get("method") or "")
    path = str(details.get("path") or "")
    old = _OLD_SUMMARY.search(summary or "")
    if old:
        method = method or old.group(1)
        path = path or old.group(2)
    connector = ""
    if path:
        try:
            match = resolve(path)
        except Resolver404:
            match = None
        if match is not None:
            url_name = url_name or (match.view_name or "")
            connector = str(match.kwargs.get("name", ""))
    return url_name, method or "GET", connector


def refused_action(
    *, action: str, details: Any, summary: str = "", connector_name: str = ""
) -> str:
    """What a refused request tried to do, in words ("" when the record does not say)."""
    details = details if isinstance(details, dict) else {}
    url_name, method, in_url = _where(details, summary)
    phrase = _phrase(REFUSED_ACTIONS.get(url_name), method)
    if action in REFUSED_BY_ACTION and (not phrase or action != "permission_denied"):
        phrase = REFUSED_BY_ACTION[action]
    if not phrase:
        return ""
    name = connector_name or in_url
    return phrase.replace("{connector}", name or "a connector")


def event_refusal(event: Any) -> str:
    """refused_action() of a denial record ("" for other kinds)."""
    if getattr(event, "kind", "") != "denial":
        return ""
    return refused_action(
        action=event.action,
        details=event.details,
        summary=event.summary,
        connector_name=event.connector_name,
    )
