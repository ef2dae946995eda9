"""Response headers: Content-Security-Policy without inline script, Permissions-Policy, no-store."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from audit.models import AuditEvent

pytestmark = pytest.mark.django_db

TEMPLATES = Path(__file__).resolve().parents[1] / "templates"


def directives(header: str) -> dict[str, list[str]]:
    parsed: dict[str, list[str]] = {}
    for part in header.split(";"):
        name, *values = part.split()
        parsed[name] = values
    return parsed


def test_csp_allows_only_own_scripts(client):
    for response in (client.get("/accounts/login/"), client.get("/admin/login/")):
        policy = directives(response["Content-Security-Policy"])
        assert policy["default-src"] == ["'self'"]
        assert policy["script-src"] == ["'self'"]
        assert policy["object-src"] == ["'none'"]
        assert policy["base-uri"] == ["'none'"]
        assert policy["frame-ancestors"] == ["'none'"]
        assert policy["form-action"] == ["'self'"]
        assert "'unsafe-inline'" not in response["Content-Security-Policy"]
        assert "'unsafe-eval'" not in response["Content-Security-Policy"]
        assert not any("unsafe" in value for value in policy["script-src"])


def test_signed_in_pages_carry_every_header(admin_client, make_connector):
    connector = make_connector("hr_portal")
    event = AuditEvent.objects.order_by("-id").first()
    for url in (
        "/connectors/",
        f"/connectors/{connector.name}/",
        f"/connectors/{connector.name}/edit/",
        "/connectors/new/",
        "/audit/",
        f"/audit/{event.pk}/",
    ):
        response = admin_client.get(url)
        assert response.status_code == 200, url
        assert "script-src 'self'" in response["Content-Security-Policy"], url
        cache_control = {item.strip() for item in response["Cache-Control"].split(",")}
        assert {"no-store", "private"} <= cache_control, url
        permissions = response["Permissions-Policy"]
        for feature in ("camera=()", "microphone=()", "geolocation=()", "payment=()", "usb=()"):
            assert feature in permissions, url


def test_anonymous_pages_have_permissions_policy(client):
    for url in ("/accounts/login/", "/admin/login/"):
        assert "camera=()" in client.get(url)["Permissions-Policy"]


INLINE_SCRIPT = re.compile(r"<script(?![^>]*\bsrc\s*=)[^>]*>", re.IGNORECASE)
INLINE_HANDLER = re.compile(r"<[a-z][^>]*\son[a-z]+\s*=", re.IGNORECASE)
JAVASCRIPT_URL = re.compile(r"""(?:href|src|action|formaction)\s*=\s*["']?\s*javascript:""", re.I)


@pytest.mark.parametrize(
    "path", sorted(TEMPLATES.rglob("*.html")), ids=lambda p: str(p.relative_to(TEMPLATES))
)
def test_no_template_has_inline_script(path):
    text = path.read_text()
    assert not INLINE_SCRIPT.findall(text), "move the script into a static .js file"
    assert not INLINE_HANDLER.findall(text), "attach the handler from a static .js file"
    assert not JAVASCRIPT_URL.findall(text)
