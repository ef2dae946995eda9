"""Error pages in the console layout, the detail page's fields, and the no-script stand-ins."""

from __future__ import annotations

import re

import pytest
from django.test import Client

from accounts.roles import roles_granting
from config import errors
from connectors.models import Connector
from tests.conftest import OAUTH2_PASSWORD, make_user

pytestmark = pytest.mark.django_db


def client_for(role: str, username: str | None = None) -> Client:
    client = Client()
    client.force_login(make_user(role, username=username))
    return client


# ---- 403 --------------------------------------------------------------------------------


def test_403_says_what_was_refused_and_which_role_allows_it(make_connector):
    make_connector("hr_portal")
    response = client_for("viewer").get("/connectors/hr_portal/edit/")
    assert response.status_code == 403
    html = response.content.decode()
    assert '<nav class="navbar' in html and '<main class="container-xl pb-5" id="main"' in html
    assert "You may not do this" in html
    assert "GET /connectors/hr_portal/edit/" in html
    assert "Can change connector" in html
    assert re.search(r"The <strong>Connector admins</strong> role allows it", html), html
    assert "Your roles: <strong>Connector viewers</strong>" in html
    assert 'href="/connectors/hr_portal/"' in html  # the way back


def test_403_for_a_test_names_both_roles_that_may_run_it(make_connector):
    make_connector("hr_portal")
    response = client_for("viewer").post("/connectors/hr_portal/test/")
    assert response.status_code == 403
    html = response.content.decode()
    assert "<strong>Connector operators</strong>, <strong>Connector admins</strong>" in html


def test_403_for_exporting_secrets_says_no_role_has_it(make_connector):
    make_connector("hr_portal")
    response = client_for("admin").post(
        "/connectors/export/", {"include_secrets": "on", "passphrase": "x" * 20}
    )
    assert response.status_code == 403
    assert "No role allows it" in response.content.decode()


def test_403_without_a_known_permission_still_explains(db):
    response = client_for("nobody").get("/audit/")
    assert response.status_code == 403
    html = response.content.decode()
    assert "Your roles: none" in html
    assert "Ask an administrator" in html


def test_roles_granting_lists_the_least_powerful_first(db):
    make_user("viewer", username="roles_probe")  # makes sure the groups exist
    assert roles_granting(["connectors.view_connector"]) == [
        "Connector viewers",
        "Connector operators",
        "Connector admins",
    ]
    assert roles_granting(["connectors.test_connector"]) == [
        "Connector operators",
        "Connector admins",
    ]
    assert roles_granting(["connectors.export_secrets"]) == []


# ---- 404 --------------------------------------------------------------------------------


@pytest.mark.parametrize("debug", [True, False])
def test_a_missing_connector_shows_our_404(settings, debug):
    settings.DEBUG = debug
    response = client_for("viewer").get("/connectors/no_such_thing/edit/")
    # A viewer may not edit: permission first, so this is the 403, whether or not it exists.
    assert response.status_code == 403
    response = client_for("admin", "admin2").get("/connectors/no_such_thing/")
    assert response.status_code == 404
    html = response.content.decode()
    assert "No connector named “no_such_thing”" in html
    assert '<nav class="navbar' in html
    assert 'href="/connectors/?q=no_such_thing"' in html
    assert "Technical" not in html and "URLconf" not in html


def test_a_missing_batch_shows_our_generic_404(settings):
    settings.DEBUG = True
    response = client_for("viewer").get("/connectors/batch/999999/")
    assert response.status_code == 404
    assert "Page not found" in response.content.decode()


# ---- 500 --------------------------------------------------------------------------------


def test_500_page_needs_no_database(django_assert_num_queries, rf):
    with django_assert_num_queries(0):
        response = errors.server_error(rf.get("/anything/"))
    html = response.content.decode()
    assert response.status_code == 500
    assert 'aria-label="Main"' in html and '<main class="container-xl pb-5" id="main"' in html
    assert "<h1" in html and 'href="/connectors/"' in html
    assert "/static/connectors/console.css" in html


def test_500_page_falls_back_to_fixed_text(monkeypatch, rf):
    def broken(*args, **kwargs):
        raise RuntimeError("template broken")

    monkeypatch.setattr(errors.loader, "render_to_string", broken)
    response = errors.server_error(rf.get("/anything/"))
    assert response.status_code == 500
    assert b"Something went wrong on the server" in response.content


def test_500_handler_is_ours():
    from config import urls

    assert urls.handler500 == "config.errors.server_error"


# ---- Detail page: only the chosen Auth Config's and grant's fields ----------------------


def settings_labels(html: str) -> list[str]:
    pane = html.split('id="pane-settings"', 1)[1].split("</dl>", 1)[0]
    return [
        re.sub(r"<[^>]+>", "", label).strip() for label in re.findall(r"<dt[^>]*>(.*?)</dt>", pane)
    ]


def test_detail_password_grant_lists_each_secret_after_its_id(make_connector):
    make_connector("hr_portal", **OAUTH2_PASSWORD)
    labels = settings_labels(client_for("viewer").get("/connectors/hr_portal/").content.decode())
    assert labels.index("Client Secret") == labels.index("Client ID") + 1
    assert labels.index("Password Grant Password") == labels.index("Password Grant Username") + 1
    assert "Password Grant Scope" in labels
    for other in (
        "Client Credentials Grant Scope",
        "Refresh Token Grant Refresh Token",
        "Refresh Token Grant Scope",
        "Username",
        "Api Key",
        "Bearer Token",
    ):
        assert other not in labels, (other, labels)


def test_detail_client_credentials_hides_the_password_grant(make_connector):
    make_connector(
        "svc",
        **{
            **OAUTH2_PASSWORD,
            "oauth2_grant_type": "client_credentials",
            "oauth2_username": "",
            "oauth2_password": "",
        },
    )
    labels = settings_labels(client_for("viewer").get("/connectors/svc/").content.decode())
    assert "Password Grant Username" not in labels and "Password Grant Password" not in labels
    assert "Client Credentials Grant Scope" in labels
    assert labels.index("Client Secret") == labels.index("Client ID") + 1


def test_detail_api_key_in_a_query_parameter(make_connector):
    make_connector(
        "keyed",
        auth_config="api_key",
        api_key_location="param",
        api_key_param_name="api_key",
        api_key="k-123",
    )
    labels = settings_labels(client_for("viewer").get("/connectors/keyed/").content.decode())
    assert "Param Auth Param Name" in labels and "Api Key" in labels
    assert "Header Auth Key" not in labels and "Header Auth Value Pattern" not in labels
    assert "Client ID" not in labels


def test_detail_basic(make_connector):
    make_connector("basic_one", auth_config="basic", basic_username="u", basic_password="p")
    html = client_for("viewer").get("/connectors/basic_one/").content.decode()
    labels = settings_labels(html)
    assert labels.index("Password") == labels.index("Username") + 1
    assert ">p<" not in html  # the secret itself never


def test_auth_fields_follow_the_models_tables():
    connector = Connector(auth_config="oauth2", oauth2_grant_type="refresh_token")
    fields = connector.auth_fields()
    assert "oauth2_refresh_token" in fields and "oauth2_password" not in fields
    assert fields.index("oauth2_client_secret") == fields.index("oauth2_client_id") + 1
    assert Connector(auth_config="none").auth_fields() == ()


# ---- No-script stand-ins ---------------------------------------------------------------


def test_new_form_renders_three_empty_rows_with_unique_names(admin_user):
    client = Client()
    client.force_login(admin_user)
    html = client.get("/connectors/new/").content.decode()
    for prefix, title in (("headers", "Additional Headers"), ("data", "Additional Request Data")):
        assert f'name="{prefix}-TOTAL_FORMS" value="3"' in html
        for number in (1, 2, 3):
            assert f'aria-label="{title} row {number} name"' in html
            assert f'aria-label="{title} row {number} value"' in html
    labels = re.findall(r'aria-label="(Additional [^"]+ row \d+ [a-z]+)"', html)
    assert len(labels) == len(set(labels)), labels


def test_form_test_page_links_back_to_the_form(make_connector, admin_user, settings):
    settings.CONNECTORS_OUTBOUND_ALLOW_LOOPBACK = False
    client = Client()
    client.force_login(admin_user)
    response = client.post("/connectors/new/test/", {"name": ""})
    html = response.content.decode()
    assert 'href="/connectors/new/" data-cc-back-to-form' in html
    # The panel fetched by the page's script needs no such link: the form is right above it.
    fetched = client.post(
        "/connectors/new/test/", {"name": ""}, headers={"X-Requested-With": "fetch"}
    )
    assert "data-cc-back-to-form" not in fetched.content.decode()


def test_every_page_has_a_skip_link_and_marks_scripting(admin_client):
    html = admin_client.get("/connectors/").content.decode()
    assert '<a class="visually-hidden-focusable cc-skip-link" href="#main">' in html
    assert "connectors/scripted.js" in html


def test_a_refused_form_post_answers_in_the_layout(admin_user):
    client = Client(enforce_csrf_checks=True)
    client.force_login(admin_user)
    response = client.post("/connectors/new/", {"name": "x_csrf"})
    assert response.status_code == 403
    html = response.content.decode()
    assert "The form could not be accepted" in html
    assert 'aria-label="Main"' in html and 'id="main"' in html


def test_500_page_renders_even_when_no_address_resolves(monkeypatch, rf):
    def broken(*args, **kwargs):
        raise RuntimeError("no URLconf")

    monkeypatch.setattr(errors, "reverse", broken)
    monkeypatch.setattr(errors, "static", broken)
    html = errors.server_error(rf.get("/anything/")).content.decode()
    assert 'href="/connectors/"' in html and "/static/connectors/console.css" in html
    assert 'aria-label="Main"' in html
