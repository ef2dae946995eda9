"""Explanations: an outcome plus its facts, in words, naming the form's own fields.

The HTTP core (`connectors.oauth_http`) says what happened: an `Outcome` and the facts behind it.
This module says what it means and what to do next, through tables keyed by outcome and by Auth
Config. Field names come from the model's verbose names, the one place the form's labels are
defined, so renaming a field renames it in every hint.

Advice has two readers: someone who may edit the connector is told what to change (and gets a
one-click `Fix` where the test found the value), someone who may only test is told what to ask
a Connector admin to change. `Advice.for_editor()` is also the text stored with the run.
"""

from __future__ import annotations

from connectors.explain.api import (
    API_HINTS,
    api_advice,
    api_hint,
    secret_missing_advice,
    secret_missing_hint,
)
from connectors.explain.outcomes import (
    FIELD_LABELS,
    NOT_CONNECTED_HINT,
    OUTCOME_LABELS,
    OUTCOME_TEXTS,
    RECONNECT_HINT,
    RESULT_WORDING,
    Advice,
    ConsoleOutcome,
    Fix,
    FixField,
    OutcomeText,
    ResultText,
    ResultWording,
    client_auth_name,
    label,
    outcome_label,
    outcome_text,
    result_text,
    scope_label,
)
from connectors.explain.token import (
    TOKEN_HINTS,
    assertion_problem,
    jwt_config_hint,
    token_advice,
    token_hint,
)

__all__ = [
    "API_HINTS",
    "FIELD_LABELS",
    "OUTCOME_LABELS",
    "OUTCOME_TEXTS",
    "RESULT_WORDING",
    "TOKEN_HINTS",
    "Advice",
    "NOT_CONNECTED_HINT",
    "RECONNECT_HINT",
    "ConsoleOutcome",
    "Fix",
    "FixField",
    "OutcomeText",
    "ResultText",
    "ResultWording",
    "api_advice",
    "api_hint",
    "assertion_problem",
    "client_auth_name",
    "jwt_config_hint",
    "label",
    "outcome_label",
    "outcome_text",
    "result_text",
    "scope_label",
    "secret_missing_advice",
    "secret_missing_hint",
    "token_advice",
    "token_hint",
]
