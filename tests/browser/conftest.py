"""Browser fixtures: a logged-in Playwright page against pytest-django's live server."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import USER_PASSWORD, make_user

ARTIFACTS = Path(__file__).resolve().parents[2] / "artifacts"


@pytest.fixture(scope="session", autouse=True)
def live_server_outlasts_the_browser(live_server) -> Iterator[None]:
    """Set up before the browser, so torn down after it: the live server's request threads
    (which serve the browser's keep-alive connections) end before the server does.

    Otherwise they ended after it, once the browser closed its sockets, and closed the
    database connection that on SQLite they share with the tests, which by then was no
    longer shared: an error in each thread, reported as a pytest warning.
    """
    yield
    for thread in threading.enumerate():
        if thread.name.endswith("(process_request_thread)"):
            thread.join(timeout=5)


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
