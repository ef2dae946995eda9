"""Test connection in Chromium against django-oauth-toolkit: success, then a broken password."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from audit.models import TestRun
from connectors.models import Connector

pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("loopback_allowed"),
]


def test_fill_form_test_success_then_invalid_grant(
    logged_in_page, live_server, oauth_peer, artifacts_dir
):
    page = logged_in_page
    page.goto(f"{live_server.url}/connectors/new/")
    page.fill("#id_name", "dot_browser")
    page.fill("#id_base_url", oauth_peer.base_url)
    page.select_option("#id_auth_config", "oauth2")
    page.fill("#id_oauth2_client_id", oauth_peer.client_id)
    page.fill("#id_oauth2_client_secret", oauth_peer.client_secret)
    page.fill("#id_oauth2_username", oauth_peer.username)
    page.fill("#id_oauth2_password", oauth_peer.password)
    page.fill("#id_oauth2_token_url", oauth_peer.token_url)

    page.click("[data-cc-test]")
    result = page.locator("#test-result [data-cc-test-result]")
    expect(result).to_have_attribute("data-cc-outcome", "success")
    expect(result.locator("[data-cc-method]")).to_contain_text("Basic Auth Header")
    expect(result.locator("[data-audit-attempt]")).to_have_count(1)
    page.screenshot(path=str(artifacts_dir / "connection-test-success.png"), full_page=True)

    page.fill("#id_oauth2_password", "not-the-password")
    page.click("[data-cc-test]")
    expect(result).to_have_attribute("data-cc-outcome", "invalid_grant")
    expect(result.locator("[data-cc-hint]")).to_contain_text("Password Grant Password")
    assert oauth_peer.password not in page.content()
    assert "not-the-password" not in page.content()
    page.screenshot(path=str(artifacts_dir / "connection-test-invalid-grant.png"), full_page=True)

    # Testing saved nothing; both runs were recorded.
    assert not Connector.objects.exists()
    assert list(TestRun.objects.order_by("id").values_list("outcome", flat=True)) == [
        "success",
        "invalid_grant",
    ]
