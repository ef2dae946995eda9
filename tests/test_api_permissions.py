"""The API permission matrix: each endpoint, method and role, as on the pages; refusals audited."""

from __future__ import annotations

import json
from typing import Any

import pytest
from django.contrib.auth.models import Permission
from django.test import Client

from audit.models import AuditEvent
from connectors.api.tokens import api_token_create
from tests.conftest import make_user

# (method, url, permission the pages require) for every endpoint.
ENDPOINTS: list[tuple[str, str, tuple[str, ...]]] = [
    ("get", "/api/v1/connectors/", ("view_connector",)),
    ("post", "/api/v1/connectors/", ("add_connector",)),
    ("get", "/api/v1/connectors/hr_portal/", ("view_connector",)),
    ("patch", "/api/v1/connectors/hr_portal/", ("change_connector",)),
    ("delete", "/api/v1/connectors/hr_portal/", ("delete_connector",)),
    ("post", "/api/v1/connectors/hr_portal/test/", ("test_connector",)),
    ("get", "/api/v1/connectors/hr_portal/runs/", ("view_connector",)),
    ("post", "/api/v1/batches/", ("test_connector",)),
    ("get", "/api/v1/batches/1/", ("view_connector",)),
    ("get", "/api/v1/audit/", ("view_auditevent",)),
    ("get", "/api/v1/audit/1/", ("view_auditevent",)),
    ("post", "/api/v1/import/", ("import_connectors", "add_connector", "change_connector")),
    ("get", "/api/v1/export/", ("import_connectors",)),
]
ROLES = ["nobody", "viewer", "operator", "admin"]


def allowed(role: str, needed: tuple[str, ...]) -> bool:
    user = make_user(role, f"probe_{role}")
    perms = {p.split(".")[1] for p in user.get_all_permissions()}
    return set(needed) <= perms


@pytest.mark.django_db
@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize(("method", "url", "needed"), ENDPOINTS, ids=lambda v: str(v))
def test_matrix(
    role: str, method: str, url: str, needed: tuple[str, ...], make_connector, celery_no_worker
) -> None:
    # celery_no_worker: an allowed POST /api/v1/batches/ queues its tests where no worker reads.
    make_connector()
    expected = allowed(role, needed)
    user = make_user(role)
    client = Client(
        HTTP_AUTHORIZATION=f"Token {api_token_create(user=user, name='m', expires_days=1)}"
    )
    before = AuditEvent.objects.filter(kind="denial").count()
    # An empty JSON body: refused ones never read it; allowed ones may answer 400, 412 or 428.
    if method == "get":
        response = client.get(url)
    else:
        response = getattr(client, method)(
            url, data=json.dumps({}), content_type="application/json"
        )
    if expected:
        assert response.status_code not in (401, 403), response.content
    else:
        assert response.status_code == 403, response.content
        assert response["Content-Type"] == "application/problem+json"
        denial = AuditEvent.objects.filter(kind="denial").order_by("-id").first()
        assert AuditEvent.objects.filter(kind="denial").count() == before + 1
        assert denial is not None and denial.username == role
        assert denial.details["via"]["api_client"] == "m"


@pytest.mark.django_db
@pytest.mark.parametrize(("method", "url", "needed"), ENDPOINTS, ids=lambda v: str(v))
def test_anonymous_gets_401(method: str, url: str, needed: Any) -> None:
    response = getattr(Client(), method)(url)
    assert response.status_code == 401
    assert response["WWW-Authenticate"] == "Token"


@pytest.mark.django_db
def test_refusal_does_not_reveal_names(make_connector) -> None:
    make_connector()
    token = api_token_create(user=make_user("nobody"), name="x", expires_days=1)
    client = Client(HTTP_AUTHORIZATION=f"Token {token}")
    real = client.get("/api/v1/connectors/hr_portal/")
    ghost = client.get("/api/v1/connectors/ghost/")
    assert real.status_code == ghost.status_code == 403


@pytest.mark.django_db
def test_token_acts_with_roles_not_more(make_connector) -> None:
    """A viewer's token reads but cannot create; granting the user a role widens the token."""
    viewer = make_user("viewer")
    client = Client(
        HTTP_AUTHORIZATION=f"Token {api_token_create(user=viewer, name='v', expires_days=1)}"
    )
    create = {"name": "later", "auth_config": "none"}
    assert (
        client.post("/api/v1/connectors/", create, content_type="application/json").status_code
        == 403
    )
    viewer.user_permissions.add(Permission.objects.get(codename="add_connector"))
    assert (
        client.post("/api/v1/connectors/", create, content_type="application/json").status_code
        == 201
    )
