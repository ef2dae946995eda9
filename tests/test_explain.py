"""The Django side of explanations: one vocabulary, one label table, the form's own field names."""

from __future__ import annotations

import pytest

from connectors import explain
from connectors.models import ClientAuthentication, Connector, GrantType
from connectors.oauth_http import (
    CLIENT_AUTH_LABELS,
    CONFIGURABLE_CLIENT_AUTHENTICATION,
    GRANT_LABELS,
    Grant,
    OutboundPolicy,
    Outcome,
    TokenRequest,
    token_request_perform,
)


def test_every_outcome_has_its_text_and_nothing_else_does() -> None:
    # The core's outcomes, plus the two the Authorization Code connection adds.
    assert set(explain.OUTCOME_TEXTS) == {str(outcome) for outcome in Outcome} | {
        explain.ConsoleOutcome.RECONNECT_NEEDED,
        explain.ConsoleOutcome.NOT_CONNECTED,
    }


def test_choices_derive_from_the_core_vocabulary() -> None:
    assert [value for value, _ in GrantType.choices] == [str(grant) for grant in Grant]
    assert dict(GrantType.choices) == {str(k): v for k, v in GRANT_LABELS.items()}
    assert dict(ClientAuthentication.choices) == {
        str(method): CLIENT_AUTH_LABELS[method] for method in CONFIGURABLE_CLIENT_AUTHENTICATION
    }


def test_the_panel_names_each_method_from_the_one_table() -> None:
    for method, name in CLIENT_AUTH_LABELS.items():
        assert explain.client_auth_name(str(method)) == name
    assert explain.client_auth_name("something_new") == "something_new"


def test_field_labels_are_the_model_verbose_names() -> None:
    field = Connector._meta.get_field("oauth2_token_url")
    assert explain.FIELD_LABELS.token_url == field.verbose_name
    assert explain.label("test_request_path") == "Test request path"


@pytest.mark.parametrize(
    ("labels", "expected"),
    [(None, "The token URL is empty."), (explain.FIELD_LABELS, "Oauth2 Token Url is empty.")],
)
def test_the_core_names_fields_only_as_it_is_told(labels, expected) -> None:
    kwargs = {"labels": labels} if labels else {}
    result = token_request_perform(
        TokenRequest("", "password"), policy=OutboundPolicy(), **kwargs
    )
    assert result.outcome == Outcome.CONFIG_ERROR
    assert result.message == expected


def test_hints_follow_the_field_labels(monkeypatch) -> None:
    result = token_request_perform(
        TokenRequest("ftp://x.example.test/t", "password"),
        policy=OutboundPolicy(),
        labels=explain.FIELD_LABELS,
    )
    assert explain.token_hint(result) == explain.OUTCOME_TEXTS["config_error"].next_step
    explain.label.cache_clear()
    monkeypatch.setattr(
        Connector._meta.get_field("oauth2_token_url"), "verbose_name", "Token endpoint"
    )
    try:
        facts = result.facts.__class__(grant_type="password", timeout=3.0)
        timed_out = result.__class__(
            ok=False,
            outcome=Outcome.TIMEOUT,
            message="",
            attempts=result.attempts,
            client_authentication_used=None,
            token=None,
            duration_ms=0,
            facts=facts,
        )
        assert "Check Token endpoint and that this server can reach it" in explain.token_hint(
            timed_out
        )
    finally:
        explain.label.cache_clear()


def test_the_unencoded_basic_form_is_a_choice_in_the_products_words() -> None:
    value = "basic_client_unencoded"
    assert value in dict(ClientAuthentication.choices)
    name = explain.client_auth_name(value)
    assert name.startswith("OAuth 2.0 with Basic Auth Header") and "unencoded" in name
    field = Connector._meta.get_field("oauth2_client_authentication")
    assert field.max_length >= len(value)


def test_a_refused_pinned_unencoded_basic_points_to_the_encoded_form() -> None:
    from connectors.oauth_http import Attempt, Facts, TokenResult

    attempt = Attempt(
        "basic_client_unencoded", "POST", "", (), (), 401, (), "", 0, Outcome.INVALID_CLIENT, ""
    )
    result = TokenResult(
        ok=False,
        outcome=Outcome.INVALID_CLIENT,
        message="",
        attempts=(attempt,),
        client_authentication_used=None,
        token=None,
        duration_ms=0,
        facts=Facts(client_rejected=True, client_authentication="basic_client_unencoded"),
    )
    hint = explain.token_hint(result)
    assert CLIENT_AUTH_LABELS[ClientAuthentication.BASIC_CLIENT] in hint
    assert "username and password" not in hint


@pytest.mark.parametrize(
    "code", ["request_body", "basic_client", "basic_client_unencoded", "basic_user"]
)
def test_the_audit_steps_name_each_method_from_the_same_table(code: str) -> None:
    from types import SimpleNamespace

    from audit.templatetags.audit_tags import client_auth_label

    step = SimpleNamespace(client_authentication=code, step="token")
    assert client_auth_label(step) == explain.client_auth_name(code)
