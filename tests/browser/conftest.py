"""Browser fixtures: a logged-in Playwright page against pytest-django's live server."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import USER_PASSWORD, make_user

ARTIFACTS = Path(__file__).resolve().parents[2] / "artifacts"


@pytest.fixture
def artifacts_dir() -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS


@pytest.fixture
def logged_in_page(page, live_server):
    """A page logged in as a Connector admin (who can also run tests)."""
    make_user("admin", username="browser_admin")
    page.set_default_timeout(10_000)
    page.goto(f"{live_server.url}/accounts/login/")
    page.fill("#id_username", "browser_admin")
    page.fill("#id_password", USER_PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(f"{live_server.url}/connectors/")
    return page
