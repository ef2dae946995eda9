"""Signed JWTs in Chromium: the signing block follows the choices, key help, decoded result."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from connectors.models import Connector
from connectors.oauth_http import assertions
from tests.peers.jwt_server import JwtPeer

pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("loopback_allowed"),
]


def test_signing_fields_follow_the_choices(logged_in_page, live_server, artifacts_dir):
    page = logged_in_page
    page.set_viewport_size({"width": 1280, "height": 900})
    page.goto(f"{live_server.url}/connectors/new/")
    block = page.locator("[data-cc-jwt]")
    issuer = page.locator("#id_jwt_issuer")
    key = page.locator("#id_jwt_private_key")
    expect(block).to_be_hidden()

    page.select_option("#id_auth_config", "oauth2")
    expect(block).to_be_hidden()
    page.select_option("#id_oauth2_grant_type", "jwt_bearer")
    expect(block).to_be_visible()
    expect(issuer).to_be_visible()
    expect(page.locator("#id_jwt_subject")).to_be_visible()
    page.fill("#id_name", "idp_jwt_bearer")
    page.fill("#id_oauth2_token_url", "https://login.example.com/oauth2/token")
    page.fill("#id_jwt_issuer", "svc-reporting@example.com")
    page.fill("#id_jwt_subject", "alice@example.com")
    block.scroll_into_view_if_needed()
    block.screenshot(path=str(artifacts_dir / "jwt-bearer-grant-form.png"))

    # Client credentials with a client secret: nothing signs, the block goes away.
    page.select_option("#id_oauth2_grant_type", "client_credentials")
    expect(block).to_be_hidden()
    expect(page.locator("#id_oauth2_client_secret")).to_be_visible()
    page.click("#oauth2-additional > summary")
    page.select_option("#id_oauth2_client_authentication", "private_key_jwt")
    expect(block).to_be_visible()
    expect(key).to_be_visible()
    # A client assertion states the Client ID as issuer and subject: no fields for them; and it
    # replaces the Client Secret.
    expect(issuer).to_be_hidden()
    expect(page.locator("#id_oauth2_client_secret")).to_be_hidden()
    block.scroll_into_view_if_needed()
    block.screenshot(path=str(artifacts_dir / "private-key-jwt-form.png"))

    page.select_option("#id_auth_config", "jwt_auth")
    expect(block).to_be_visible()
    expect(issuer).to_be_visible()
    expect(page.locator("#id_oauth2_client_id")).to_be_hidden()
    expect(page.locator("#id_jwt_ttl_seconds")).to_have_value("300")
    page.screenshot(path=str(artifacts_dir / "jwt-auth-form.png"), full_page=True)


def test_generate_key_pair_and_see_the_decoded_assertion(
    logged_in_page, live_server, artifacts_dir, make_connector
):
    page = logged_in_page
    page.set_viewport_size({"width": 1280, "height": 900})
    with JwtPeer() as peer:
        connector = make_connector(
            "idp_jwt_bearer",
            auth_config="oauth2",
            oauth2_grant_type="jwt_bearer",
            oauth2_token_url=peer.token_url,
            jwt_private_key=assertions.generate_private_key_pem("RS256"),
            jwt_issuer="svc-reporting",
            jwt_subject="alice",
            jwt_key_id="console-2026-11",
            jwt_extra_headers='{"typ": "JWT"}',
        )
        page.goto(f"{live_server.url}/connectors/{connector.name}/edit/")
        help_box = page.locator("[data-cc-key-help]")
        old_public = page.locator("[data-cc-public-pem]").inner_text()
        page.once("dialog", lambda dialog: dialog.accept())
        page.click("[data-cc-generate-key]")
        page.wait_for_url(f"{live_server.url}/connectors/{connector.name}/edit/")
        expect(page.locator(".alert-success")).to_contain_text("Generated a new RS256 key pair")
        new_public = page.locator("[data-cc-public-pem]").inner_text()
        assert new_public != old_public
        expect(page.locator("[data-cc-public-jwk]")).to_contain_text('"kid": "console-2026-11"')
        expect(help_box.locator("[data-cc-key-kind]")).to_have_text("RSA 2048 bits")
        help_box.scroll_into_view_if_needed()
        page.locator("[data-cc-jwt]").screenshot(path=str(artifacts_dir / "jwt-key-help.png"))

        # Register the new public JWK with the provider, then test from the detail page.
        stored = Connector.objects.get(pk=connector.pk).jwt_private_key
        peer.register_client("svc-reporting", jwk=assertions.public_jwk(stored))
        page.goto(f"{live_server.url}/connectors/{connector.name}/")
        page.click("[data-cc-test]")
        result = page.locator("#test-result [data-cc-test-result]")
        # Generous: RSA signing and Authlib's verification are slow on a loaded CI machine.
        expect(result).to_have_attribute("data-cc-outcome", "success", timeout=30_000)
        decoded = result.locator("[data-audit-signed-jwt]")
        expect(decoded).to_contain_text('"iss": "svc-reporting"')
        expect(decoded.locator("[data-audit-jwt-header]")).to_contain_text(
            '"kid": "console-2026-11"'
        )
        sent = [r.form["assertion"] for r in peer.requests if "assertion" in r.form][-1]
        assert assertions.signature_of(sent) not in page.content()
        result.scroll_into_view_if_needed()
        result.screenshot(path=str(artifacts_dir / "jwt-bearer-result-decoded.png"))

        # A wrong audience: the refusal and its hint.
        page.goto(f"{live_server.url}/connectors/{connector.name}/edit/")
        page.click("#oauth2-additional > summary")
        page.fill("#id_jwt_audience", "https://login.example.com/oauth2/token")
        page.click("[data-cc-test]")
        result = page.locator("#test-result [data-cc-test-result]")
        expect(result).to_have_attribute("data-cc-outcome", "invalid_grant", timeout=30_000)
        expect(result.locator("[data-cc-hint]")).to_contain_text("did not accept the audience")
        result.scroll_into_view_if_needed()
        result.screenshot(path=str(artifacts_dir / "jwt-bearer-wrong-audience.png"))
