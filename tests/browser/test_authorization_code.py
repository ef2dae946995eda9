"""Connect (Authorization Code Grant with PKCE) in Chromium against django-oauth-toolkit.

The DOT peer's real authorization endpoint shows its own login and consent pages; Playwright
fills them in. Covered: the happy path (and the tests that follow use the refresh token, which
DOT rotates on every refresh), a denied consent, a tampered `state` and a replayed callback.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import pytest
from playwright.sync_api import Page, expect

from audit.models import AuditEvent
from connectors.connection_test import connector_test
from connectors.models import Connector
from tests.conftest import USER_PASSWORD, make_user

pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("loopback_allowed"),
]


def _connector(make_connector: Any, peer: Any, **overrides: Any) -> Connector:
    values = {
        "auth_config": "oauth2",
        "oauth2_grant_type": "authorization_code",
        "oauth2_client_id": peer.authcode_client_id,
        "oauth2_client_secret": peer.authcode_client_secret,
        "oauth2_authorization_url": peer.authorize_url,
        "oauth2_token_url": peer.token_url,
        "oauth2_authorization_code_scope": "read",
        "base_url": peer.base_url,
        "test_request_path": "/api/me",
        **overrides,
    }
    name = values.pop("name", "dot_authcode")
    return make_connector(name, **values)


def _sign_in_at_peer(page: Page, peer: Any) -> None:
    """The peer's login page, then its consent page."""
    page.wait_for_url(f"{peer.base_url}/accounts/login/**")
    page.fill("#id_username", peer.username)
    page.fill("#id_password", peer.password)
    page.click("#sign-in")
    page.wait_for_url(f"{peer.base_url}/o/authorize/**")
    expect(page.locator("#authorizationForm")).to_be_visible()


def _start_connect(page: Page, live_server: Any, connector: Connector) -> None:
    page.goto(f"{live_server.url}/connectors/{connector.name}/")
    page.get_by_role("button", name="Connect", exact=True).click()


def test_connect_then_tests_use_the_rotating_refresh_token(
    logged_in_page, live_server, oauth_peer, make_connector, artifacts_dir
):
    page = logged_in_page
    connector = _connector(make_connector, oauth_peer)
    page.goto(f"{live_server.url}/connectors/{connector.name}/")
    redirect_uri = page.locator("#cc-redirect-uri")
    expect(redirect_uri).to_have_value(f"{live_server.url}/connectors/oauth2/callback/")
    expect(page.locator("[data-cc-connection]")).to_have_attribute("data-cc-connection", "none")
    page.screenshot(path=str(artifacts_dir / "authcode-detail-connect.png"), full_page=True)

    page.get_by_role("button", name="Connect", exact=True).click()
    _sign_in_at_peer(page, oauth_peer)
    # The authorization request carries PKCE S256 and a state; the scope and client are ours.
    query = dict(parse_qsl(urlsplit(page.url).query))
    assert query["code_challenge_method"] == "S256" and len(query["code_challenge"]) == 43
    assert query["client_id"] == oauth_peer.authcode_client_id and query["scope"] == "read"
    assert query["redirect_uri"] == f"{live_server.url}/connectors/oauth2/callback/"
    assert len(query["state"]) >= 32
    page.screenshot(path=str(artifacts_dir / "authcode-dot-consent.png"), full_page=True)

    page.click("input[name=allow]")
    page.wait_for_url(f"{live_server.url}/connectors/oauth2/callback/result/")
    expect(page.locator("[data-cc-connect-result]")).to_have_attribute(
        "data-cc-connect-result", "connected"
    )
    page.screenshot(path=str(artifacts_dir / "authcode-callback-success.png"), full_page=True)

    connector.refresh_from_db()
    first = connector.oauth2_authorization_code_refresh_token
    assert first and connector.oauth2_connected_by.username == "browser_admin"
    assert connector.oauth2_connected_at is not None
    assert first not in page.content()

    # The next tests pass with the refresh token; DOT rotates it each time and we keep up.
    admin = connector.oauth2_connected_by
    for _ in range(2):
        outcome = connector_test(connector=Connector.objects.get(pk=connector.pk), user=admin)
        assert outcome.run.ok, (outcome.run.outcome, outcome.run.message, outcome.run.hint)
    connector.refresh_from_db()
    assert connector.oauth2_authorization_code_refresh_token not in ("", first)

    page.goto(f"{live_server.url}/connectors/{connector.name}/")
    expect(page.locator("[data-cc-connection]")).to_have_attribute(
        "data-cc-connection", "connected"
    )
    actions = set(AuditEvent.objects.values_list("action", flat=True))
    assert {"oauth2_connect", "oauth2_code_exchange", "oauth2_connected", "oauth2_refresh"} <= (
        actions
    )


def test_denied_consent_is_refused_with_a_clear_page(
    logged_in_page, live_server, oauth_peer, make_connector, artifacts_dir
):
    page = logged_in_page
    connector = _connector(make_connector, oauth_peer)
    _start_connect(page, live_server, connector)
    _sign_in_at_peer(page, oauth_peer)
    page.get_by_role("button", name="Cancel").click()
    page.wait_for_url(f"{live_server.url}/connectors/oauth2/callback/result/")
    result = page.locator("[data-cc-connect-result]")
    expect(result).to_have_attribute("data-cc-connect-result", "access_denied")
    expect(page.locator("h1")).to_have_text("Connection refused by the authorization server")
    page.screenshot(path=str(artifacts_dir / "authcode-callback-refused.png"), full_page=True)
    connector.refresh_from_db()
    assert connector.oauth2_authorization_code_refresh_token == ""
    assert AuditEvent.objects.filter(action="oauth2_callback_refused", outcome="access_denied")


def _capture_callback(page: Page, peer: Any) -> list[str]:
    """Stop the browser before the callback and hand its URL (code and state) to the test.

    The consent form's answer is the redirect to the callback: it is fetched without following
    it, and the page gets a stand-in instead.
    """
    captured: list[str] = []

    def hold(route: Any) -> None:
        if route.request.method != "POST":
            route.continue_()
            return
        answer = route.fetch(max_redirects=0)
        captured.append(answer.headers["location"])
        route.fulfill(status=200, content_type="text/plain", body="held by the test")

    page.route(f"{peer.base_url}/o/authorize/**", hold)
    return captured


def _with_state(url: str, state: str) -> str:
    parts = urlsplit(url)
    query = dict(parse_qsl(parts.query))
    query["state"] = state
    return urlunsplit((*parts[:3], urlencode(query), ""))


def test_tampered_state_is_refused_and_a_callback_is_used_once(
    logged_in_page, live_server, oauth_peer, make_connector
):
    page = logged_in_page
    connector = _connector(make_connector, oauth_peer)
    captured = _capture_callback(page, oauth_peer)
    _start_connect(page, live_server, connector)
    _sign_in_at_peer(page, oauth_peer)
    page.click("input[name=allow]")
    page.get_by_text("held by the test").wait_for()
    genuine = captured[0]
    state = dict(parse_qsl(urlsplit(genuine).query))["state"]

    result = page.locator("[data-cc-connect-result]")
    page.goto(_with_state(genuine, state[:-2] + ("AA" if not state.endswith("AA") else "BB")))
    expect(result).to_have_attribute("data-cc-connect-result", "unknown_state")
    connector.refresh_from_db()
    assert connector.oauth2_authorization_code_refresh_token == ""

    # The genuine answer still works once (the tampered one used nothing up) ...
    page.goto(genuine)
    expect(result).to_have_attribute("data-cc-connect-result", "connected")
    # ... and a replay of it is refused: the state was single use.
    page.goto(genuine)
    expect(result).to_have_attribute("data-cc-connect-result", "unknown_state")
    refused = AuditEvent.objects.filter(action="oauth2_callback_refused")
    assert refused.count() == 2


def test_another_users_callback_is_refused(
    logged_in_page, live_server, oauth_peer, make_connector, browser
):
    page = logged_in_page
    connector = _connector(make_connector, oauth_peer)
    captured = _capture_callback(page, oauth_peer)
    _start_connect(page, live_server, connector)
    _sign_in_at_peer(page, oauth_peer)
    page.click("input[name=allow]")
    page.get_by_text("held by the test").wait_for()

    # Another admin, in another browser session, follows the same answer: not theirs.
    make_user("admin", username="other_admin")
    other = browser.new_context().new_page()
    other.goto(f"{live_server.url}/accounts/login/")
    other.fill("#id_username", "other_admin")
    other.fill("#id_password", USER_PASSWORD)
    other.click("button[type=submit]")
    other.wait_for_url(f"{live_server.url}/connectors/")
    other.goto(captured[0])
    expect(other.locator("[data-cc-connect-result]")).to_have_attribute(
        "data-cc-connect-result", "unknown_state"
    )
    connector.refresh_from_db()
    assert connector.oauth2_authorization_code_refresh_token == ""


def test_form_shows_the_authorization_code_fields_and_saves_them(
    logged_in_page, live_server, oauth_peer, artifacts_dir
):
    page = logged_in_page
    page.goto(f"{live_server.url}/connectors/new/")
    page.fill("#id_name", "form_authcode")
    page.fill("#id_base_url", oauth_peer.base_url)
    page.select_option("#id_auth_config", "oauth2")
    expect(page.locator("#id_oauth2_authorization_url")).to_be_hidden()
    page.select_option("#id_oauth2_grant_type", "authorization_code")
    expect(page.locator("#id_oauth2_authorization_url")).to_be_visible()
    expect(page.locator("#id_oauth2_username")).to_be_hidden()
    expect(page.locator("#cc-form-redirect-uri")).to_have_value(
        f"{live_server.url}/connectors/oauth2/callback/"
    )
    page.fill("#id_oauth2_client_id", oauth_peer.authcode_public_client_id)
    page.fill("#id_oauth2_authorization_url", oauth_peer.authorize_url)
    page.fill("#id_oauth2_token_url", oauth_peer.token_url)
    page.locator("#oauth2-additional summary").click()
    page.fill("#id_oauth2_authorization_code_scope", "read write")
    page.fill("#id_authorize-0-key", "prompt")
    page.fill("#id_authorize-0-value", "consent")
    page.screenshot(path=str(artifacts_dir / "authcode-form.png"), full_page=True)
    page.get_by_role("button", name="Save").click()
    page.wait_for_url(f"{live_server.url}/connectors/form_authcode/")
    connector = Connector.objects.get(name="form_authcode")
    assert connector.oauth2_grant_type == "authorization_code"
    assert connector.oauth2_authorization_code_scope == "read write"
    assert connector.oauth2_client_secret == ""  # a public client
    assert [(p.kind, p.key, p.value) for p in connector.params.all()] == [
        ("authorize", "prompt", "consent")
    ]


def test_a_revoked_connection_shows_reconnect_needed(
    logged_in_page, live_server, oauth_peer, make_connector, artifacts_dir
):
    from connectors.authorization_code import connection_store

    page = logged_in_page
    connector = _connector(make_connector, oauth_peer, name="dot_revoked")
    connection_store(connector=connector, refresh_token="revoked-or-unknown", user=None)
    outcome = connector_test(connector=Connector.objects.get(pk=connector.pk))
    assert outcome.run.outcome == "reconnect_needed"
    page.goto(f"{live_server.url}/dashboard/")
    expect(page.locator('[data-cc-count="reconnect"]')).to_contain_text("Reconnect needed")
    # The badge reads the label; the code sits beside it.
    expect(page.locator('[data-cc-outcome="reconnect_needed"] .badge').first).to_have_text(
        "Reconnect needed"
    )
    page.screenshot(path=str(artifacts_dir / "authcode-dashboard-reconnect.png"), full_page=True)
    page.goto(f"{live_server.url}/connectors/{connector.name}/")
    expect(page.locator("[data-cc-connection]")).to_have_attribute(
        "data-cc-connection", "reconnect"
    )
    expect(page.get_by_role("button", name="Reconnect", exact=True)).to_be_visible()
