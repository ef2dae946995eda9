"""Issue 9, "Results that fit the connector and the reader": wording per Auth Config, hints per
role, one-click fixes, a 404 named as such, the whole redirect target, curl for every step, and
badges that show the label with the code."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
from pathlib import Path

import pytest
from django.test import Client

from audit.models import AuditEvent, TestRun
from connectors import explain
from connectors.connection_test import connector_test
from connectors.models import Connector
from connectors.oauth_http import ApiRequest, Outcome, Param, api_request_as_curl
from tests.conftest import OAUTH2_PASSWORD, form_data, make_user
from tests.peers.fault_server import API_BEARER, API_KEY, API_PASSWORD, API_USER

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("loopback_allowed")]

TEMPLATES = Path(__file__).resolve().parents[1] / "templates"
TOKEN_WORDS = ("Token received", "issued an access token", "token request")


@pytest.fixture(autouse=True)
def short_deadline(settings):
    settings.CONNECTORS_TOKEN_TIMEOUT = 3


def _client(role: str) -> Client:
    client = Client()
    client.force_login(make_user(role, f"{role}_words"))
    return client


@pytest.fixture
def admin() -> Client:
    return _client("admin")


@pytest.fixture
def operator() -> Client:
    return _client("operator")


def auth_values(auth_config: str, fault_server, *, ok: bool) -> dict[str, object]:
    """A connector of each Auth Config against the fault server's API, passing or failing."""
    api = fault_server.url("/api-check")
    if auth_config == "none":
        return {
            "auth_config": "none",
            "base_url": fault_server.url("/public-api" if ok else "/missing"),
        }
    if auth_config == "basic":
        return {
            "auth_config": "basic",
            "base_url": api,
            "basic_username": API_USER,
            "basic_password": API_PASSWORD if ok else "wrong password",
        }
    if auth_config == "api_key":
        return {
            "auth_config": "api_key",
            "base_url": api,
            "api_key_location": "header",
            "api_key_header_auth_key": "X-Api-Key",
            "api_key_header_auth_value_pattern": "%s",
            "api_key": API_KEY if ok else "not-the-key-123",
        }
    if auth_config == "api_key_param":
        return {
            "auth_config": "api_key",
            "base_url": api,
            "api_key_location": "param",
            "api_key_param_name": "api_key",
            "api_key": API_KEY if ok else "not-the-key-123",
        }
    if auth_config == "bearer":
        return {
            "auth_config": "bearer",
            "base_url": api,
            "bearer_token": API_BEARER if ok else "not-the-token-123",
        }
    return {
        **OAUTH2_PASSWORD,
        "base_url": fault_server.base_url,
        "oauth2_client_id": fault_server.client_id,
        "oauth2_client_secret": fault_server.client_secret,
        "oauth2_token_url": fault_server.url("/ok" if ok else "/error200"),
        "oauth2_client_authentication": "request_body",
    }


NON_OAUTH = ("none", "basic", "api_key", "bearer")


# --------------------------------------------------------------------------------------------
# Wording per Auth Config


@pytest.mark.parametrize("ok", [True, False], ids=["pass", "fail"])
@pytest.mark.parametrize("auth_config", NON_OAUTH)
def test_results_without_oauth_never_speak_of_tokens(
    make_connector, fault_server, admin, auth_config, ok
):
    make_connector("worded", **auth_values(auth_config, fault_server, ok=ok))
    response = admin.post("/connectors/worded/test/", HTTP_X_REQUESTED_WITH="fetch")
    page = response.content.decode()
    assert f'data-cc-outcome="{"success" if ok else "http_error"}"' in page
    for words in TOKEN_WORDS:
        assert words not in page, words
    wording = explain.RESULT_WORDING[auth_config]
    assert (wording.passed if ok else wording.failed) in page
    # A saved connector is never told to be saved.
    assert "Save the connector" not in page


def test_each_auth_config_has_its_own_wording() -> None:
    wordings = list(explain.RESULT_WORDING.values())
    assert set(explain.RESULT_WORDING) == {
        "none",
        "basic",
        "api_key",
        "bearer",
        "oauth2",
        "jwt_auth",
        "jwks_auth",
    }
    assert len({w.passed for w in wordings}) == len(wordings)
    assert len({w.failed for w in wordings}) == len(wordings)
    for code, wording in explain.RESULT_WORDING.items():
        if code != "oauth2":
            assert not any(word in wording.passed + wording.failed for word in TOKEN_WORDS)


def test_an_oauth2_pass_names_the_token_and_a_form_test_suggests_saving(
    make_connector, fault_server, admin
):
    make_connector("oauthy", **auth_values("oauth2", fault_server, ok=True))
    page = admin.post("/connectors/oauthy/test/", HTTP_X_REQUESTED_WITH="fetch").content.decode()
    assert explain.RESULT_WORDING["oauth2"].passed in page
    assert "Save the connector" not in page
    data = form_data({"name": "oauthy_new", **auth_values("oauth2", fault_server, ok=True)})
    page = admin.post("/connectors/new/test/", data, HTTP_X_REQUESTED_WITH="fetch").content.decode()
    assert 'data-cc-outcome="success"' in page
    assert "Save the connector to keep these values" in page


# --------------------------------------------------------------------------------------------
# Hints per role, and one-click fixes


def test_operator_is_told_what_to_ask_and_admin_gets_the_fix(
    make_connector, fault_server, operator, admin
):
    connector = make_connector(
        "nested",
        **{
            **auth_values("oauth2", fault_server, ok=True),
            "oauth2_token_url": fault_server.url("/nested-token"),
        },
    )
    page = operator.post("/connectors/nested/test/", HTTP_X_REQUESTED_WITH="fetch").content.decode()
    assert 'data-cc-outcome="no_token"' in page
    assert "Ask a Connector admin to set Json Access Token Key to &#x27;data.token&#x27;" in page
    assert "data-cc-fix" not in page
    assert 'data-cc-reader="operator"' in page

    page = admin.post("/connectors/nested/test/", HTTP_X_REQUESTED_WITH="fetch").content.decode()
    assert "Ask a Connector admin" not in page
    assert "Set Json Access Token Key to &#x27;data.token&#x27;." in page
    assert 'data-cc-fix="oauth2_access_token_key"' in page
    assert 'name="value" value="data.token"' in page

    # An operator cannot apply it, and the refusal is recorded.
    fix = {"field": "oauth2_access_token_key", "value": "data.token", "version": 1}
    assert operator.post("/connectors/nested/fix/", fix).status_code == 403
    connector.refresh_from_db()
    assert connector.oauth2_access_token_key == "access_token"

    response = admin.post("/connectors/nested/fix/", fix, follow=True)
    assert "Json Access Token Key is now “data.token”" in response.content.decode()
    connector.refresh_from_db()
    assert connector.oauth2_access_token_key == "data.token"
    assert connector.version == 2
    event = AuditEvent.objects.filter(kind="change", action="fix").get()
    assert event.connector_name == "nested" and event.username == "admin_words"
    assert [c["field"] for c in event.details["changes"]] == ["oauth2_access_token_key"]
    assert connector_test(connector=connector).run.ok


def test_the_redirect_target_becomes_the_token_url_in_one_click(
    make_connector, fault_server, admin
):
    connector = make_connector(
        "moved",
        **{
            **auth_values("oauth2", fault_server, ok=True),
            "oauth2_token_url": fault_server.url("/redirect-here"),
        },
    )
    page = admin.post("/connectors/moved/test/", HTTP_X_REQUESTED_WITH="fetch").content.decode()
    target = fault_server.url("/ok")
    assert 'data-cc-outcome="redirect_refused"' in page
    assert f"a redirect to {target}" in page  # the whole Location, not just the host
    assert 'data-cc-fix="oauth2_token_url"' in page
    admin.post(
        "/connectors/moved/fix/", {"field": "oauth2_token_url", "value": target, "version": 1}
    )
    connector.refresh_from_db()
    assert connector.oauth2_token_url == target and connector.version == 2
    assert connector_test(connector=connector).run.ok


def test_a_redirect_to_another_server_is_not_one_click(make_connector, fault_server, admin):
    make_connector(
        "elsewhere",
        **{
            **auth_values("oauth2", fault_server, ok=True),
            "oauth2_token_url": fault_server.url("/redirect"),
        },
    )
    page = admin.post("/connectors/elsewhere/test/", HTTP_X_REQUESTED_WITH="fetch").content.decode()
    assert "a redirect to https://elsewhere.example/token" in page
    # The rules want the secrets typed again for another server: no button, but the reason.
    assert "data-cc-fix=" not in page
    assert "data-cc-fix-problem" in page
    # Posting it anyway is refused by the same rules.
    response = admin.post(
        "/connectors/elsewhere/fix/",
        {"field": "oauth2_token_url", "value": "https://elsewhere.example/token", "version": 1},
        follow=True,
    )
    assert "Not changed" in response.content.decode()
    assert Connector.objects.get(name="elsewhere").version == 1


def test_the_method_that_worked_is_pinned_through_the_fix_endpoint(
    make_connector, fault_server, admin, operator
):
    connector = make_connector(
        "bodyonly",
        **{
            **auth_values("oauth2", fault_server, ok=True),
            "oauth2_client_authentication": "",
            "oauth2_token_url": fault_server.url("/body-only"),
        },
    )
    page = operator.post(
        "/connectors/bodyonly/test/", HTTP_X_REQUESTED_WITH="fetch"
    ).content.decode()
    assert "Ask a Connector admin to set Oauth2 Client Authentication to" in page
    page = admin.post("/connectors/bodyonly/test/", HTTP_X_REQUESTED_WITH="fetch").content.decode()
    assert 'data-cc-fix="oauth2_client_authentication"' in page
    admin.post(
        "/connectors/bodyonly/fix/",
        {"field": "oauth2_client_authentication", "value": "request_body", "version": 1},
    )
    connector.refresh_from_db()
    assert connector.oauth2_client_authentication == "request_body"
    assert AuditEvent.objects.filter(kind="change", action="pin").count() == 1


def test_only_the_settings_a_test_can_find_are_fixable(make_connector, fault_server, admin):
    make_connector("nofix", **auth_values("oauth2", fault_server, ok=True))
    response = admin.post(
        "/connectors/nofix/fix/",
        {"field": "base_url", "value": "http://127.0.0.1:1/", "version": 1},
        follow=True,
    )
    assert "Run the test again" in response.content.decode()
    assert Connector.objects.get(name="nofix").version == 1


def test_a_form_test_offers_the_fix_in_the_form(fault_server, admin):
    values = {
        "name": "nested_new",
        **auth_values("oauth2", fault_server, ok=True),
        "oauth2_token_url": fault_server.url("/nested-token"),
    }
    page = admin.post(
        "/connectors/new/test/", form_data(values), HTTP_X_REQUESTED_WITH="fetch"
    ).content.decode()
    assert 'data-cc-use-field="id_oauth2_access_token_key" data-cc-use-value="data.token"' in page
    assert "data-cc-fix=" not in page  # nothing is saved from a form test


def test_advice_reads_differently_for_each_reader() -> None:
    advice = explain.Advice(why="Keys found: data.", change="set Json Access Token Key to 'x'")
    assert advice.for_editor() == "Keys found: data. Set Json Access Token Key to 'x'."
    assert advice.for_operator() == (
        "Keys found: data. Ask a Connector admin to set Json Access Token Key to 'x'."
    )
    waiting = explain.Advice(why="The server is rate limiting: wait a minute and try again.")
    assert waiting.for_operator() == waiting.for_editor()


def test_a_fix_that_would_carry_a_secret_is_never_offered() -> None:
    advice = explain.Advice(
        change="set x", fix=explain.Fix("oauth2_token_url", "https://h/t?s=abcd1234")
    )
    assert advice.redacted(["abcd1234"]).fix is None
    assert advice.redacted(["other-secret"]).fix is not None


# --------------------------------------------------------------------------------------------
# 404 and redirects


def test_a_404_from_the_token_url_says_the_path_does_not_exist(make_connector, fault_server):
    for path in ("/html404", "/no-such-path"):
        connector = make_connector(
            path.strip("/").replace("-", "_"),
            **{
                **auth_values("oauth2", fault_server, ok=True),
                "oauth2_token_url": fault_server.url(path),
            },
        )
        run = connector_test(connector=connector).run
        assert run.outcome == "http_error"
        assert "this path does not exist" in run.hint
        assert "web page" not in run.hint


def test_a_404_from_the_api_says_the_path_does_not_exist(make_connector, fault_server):
    run = connector_test(
        connector=make_connector("api404", **auth_values("none", fault_server, ok=False))
    ).run
    assert run.outcome == "http_error"
    assert "this path does not exist" in run.hint


def test_a_401_from_the_api_names_only_this_auth_configs_fields(make_connector, fault_server):
    run = connector_test(
        connector=make_connector("bad_bearer", **auth_values("bearer", fault_server, ok=False))
    ).run
    assert "Bearer Token" in run.hint
    assert "Api Key" not in run.hint and "Username" not in run.hint


# --------------------------------------------------------------------------------------------
# Copy as curl for every step


SECRETS = (API_PASSWORD, API_KEY, API_BEARER, "ok-token", "fault+sec/ret")


def _run_curl(curl: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    script = "\n".join(line for line in curl.splitlines() if not line.startswith("#"))
    return subprocess.run(
        ["bash", "-c", script + " --write-out '\\n%{http_code}'"],
        env={"PATH": os.environ["PATH"], **env},
        capture_output=True,
        text=True,
        timeout=20,
        check=False,
    )


@pytest.mark.parametrize(
    ("auth_config", "variable", "value", "expected"),
    [
        ("none", "", "", ""),
        ("basic", "PASSWORD", API_PASSWORD, f'--user {shlex.quote(API_USER + ":")}"$PASSWORD"'),
        ("api_key", "API_KEY", API_KEY, "-H 'X-Api-Key: '\"$API_KEY\""),
        ("api_key_param", "API_KEY", API_KEY, '--data-urlencode api_key="$API_KEY"'),
        ("bearer", "BEARER_TOKEN", API_BEARER, "-H 'Authorization: Bearer '\"$BEARER_TOKEN\""),
    ],
)
def test_the_api_step_has_a_curl_that_repeats_it_exactly(
    make_connector, fault_server, auth_config, variable, value, expected
):
    connector = make_connector("curled", **auth_values(auth_config, fault_server, ok=True))
    run = connector_test(connector=connector).run
    assert run.ok, run.message
    (attempt,) = run.attempts.all()
    curl = attempt.curl
    assert curl and expected in curl
    for secret in SECRETS:
        assert secret not in curl
    if variable:
        assert curl.splitlines()[0].endswith(variable)
        assert _run_curl(curl, {}).stdout.strip().endswith("401")
    else:
        assert "Set these shell variables" not in curl
    # Run with the secret set, it gets what the test got.
    answer = _run_curl(curl, {variable: value} if variable else {})
    assert answer.stdout.strip().endswith("200"), (curl, answer)


def test_the_oauth2_api_step_reads_the_access_token_from_a_variable(make_connector, fault_server):
    connector = make_connector(
        "curled_oauth",
        **{**auth_values("oauth2", fault_server, ok=True), "test_request_path": "/api-check"},
    )
    run = connector_test(connector=connector).run
    assert run.ok, run.message
    token_step, api_step = run.attempts.order_by("position")
    assert "ACCESS_TOKEN is the access token" in api_step.curl
    assert "-H 'Authorization: Bearer '\"$ACCESS_TOKEN\"" in api_step.curl
    assert "ok-token" not in api_step.curl
    assert _run_curl(api_step.curl, {"ACCESS_TOKEN": "ok-token"}).stdout.strip().endswith("200")


def test_curl_of_a_sensitive_header_without_a_known_secret_reads_it_whole() -> None:
    request = ApiRequest(
        url="https://api.example.test/v1?token=abc",
        headers=(Param("X-Custom-Auth", "v=1;sig=zzz", sensitive=True), Param("X-Tenant", "t1")),
    )
    curl = api_request_as_curl(request)
    assert "-H 'X-Custom-Auth: '\"$HEADER_X_CUSTOM_AUTH\"" in curl
    assert "-H 'X-Tenant: t1'" in curl
    assert "zzz" not in curl and "abc" not in curl


# --------------------------------------------------------------------------------------------
# Outcome badges: the label, with the code beside it


def test_every_outcome_has_a_readable_label() -> None:
    codes = [str(o) for o in Outcome] + ["internal_error", "rate_limited", "connector_disabled"]
    for code in codes + ["ok", "login_failed", "locked_out", "delivered", "failed", "deleted"]:
        assert explain.outcome_label(code) != code
    assert explain.outcome_label("invalid_client") == "Client rejected"
    assert explain.outcome_label("something_new") == "Something new"


def test_badges_show_label_and_code(make_connector, fault_server, admin, settings):
    settings.CONNECTORS_FAIL_THRESHOLD = 1
    connector = make_connector(
        "badged",
        **{
            **auth_values("oauth2", fault_server, ok=True),
            "oauth2_token_url": fault_server.url("/nested-token"),
        },
    )
    connector_test(connector=connector)
    run = TestRun.objects.get()
    badge = re.compile(
        r'<span class="badge text-bg-danger">No access token in the response</span> '
        r'<code class="small text-body-secondary">no_token</code>'
    )
    pages = {
        "list": "/connectors/",
        "detail": "/connectors/badged/",
        "dashboard": "/dashboard/",
        "audit": "/audit/",
        "audit detail": f"/audit/{run.audit_event.pk}/",
    }
    for where, url in pages.items():
        response = admin.get(url, follow=True)
        page = response.content.decode()
        assert badge.search(page), where


def test_no_template_draws_a_badge_of_a_bare_outcome_code() -> None:
    bare = re.compile(r'class="badge[^"]*"[^>]*>\s*\{\{\s*[\w.]*outcome\s*\}\}')
    for path in TEMPLATES.rglob("*.html"):
        assert not bare.search(path.read_text()), path


def test_every_auth_config_has_its_own_result_wording():
    """A new Auth Config must not fall back to the OAuth2 wording ("issued an access token")."""
    from connectors.explain import RESULT_WORDING
    from connectors.models import AuthConfig

    assert set(RESULT_WORDING) == {str(choice) for choice in AuthConfig.values}
    for auth_config, wording in RESULT_WORDING.items():
        if auth_config != AuthConfig.OAUTH2:
            assert "access token" not in wording.passed.lower()
